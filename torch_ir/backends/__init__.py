"""Backends: JSON (save / load), Mermaid, Markdown, statistics, the reference interpreter and the verifier."""
