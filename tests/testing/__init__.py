"""The test framework: thin layers over torch-ir's backends for tests, reports and ``python -m tests``.

- ``mermaid``: a strict grammar check of the emitted Mermaid subset, and the real parser when installed;
- ``statistics``: statistics of a registered model, and hand formulas tests compare against;
- ``report``: a report per model and an index;
- ``runner``: extract on meta, save/load, verify with real weights, per registered model;
- ``transformers_models``: tiny GPT-2 and Llama cases (not in ``MODELS``; ``python -m tests --transformers``).
"""
