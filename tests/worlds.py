"""Generated worlds for the tests' fixtures."""

from __future__ import annotations

from pathlib import Path

from include.generator.generate import generate
from include.generator.world import WorldParams


def generated(tmp_path_factory, name: str, params: WorldParams) -> Path:
    """A generated world (data and truth) in a fresh temporary directory."""
    out = tmp_path_factory.mktemp(name) / "data"
    generate(params, out, progress=lambda m: None)
    return out
