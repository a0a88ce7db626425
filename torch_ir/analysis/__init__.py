"""What is computed from an IR without running it: statistics (FLOPs, bytes, liveness), the extraction
summary, and op facts (purity, side effects, view ops)."""
