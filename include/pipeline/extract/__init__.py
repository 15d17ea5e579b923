"""Connectors: each pulls one office's system into the raw layer (issue 3)."""
