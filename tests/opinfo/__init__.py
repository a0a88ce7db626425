"""PyTorch's OpInfo database as a test suite for torch-ir (see ``tests/opinfo/sweep.py``)."""
