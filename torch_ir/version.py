"""The version of torch-ir, for the files it writes and ``torch-ir --version``."""

__version__ = "0.1.0"
