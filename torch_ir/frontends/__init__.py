"""Frontends: torch.export to the IR, model specs and input specs."""
