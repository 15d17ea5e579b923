import pytest

from include.generator.generate import generate
from include.generator.world import WorldParams

SMALL = WorldParams(persons=1500, periods=2, findings_per_code=2, seed=11)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small jurisdiction, two periods, two injected problems per code."""
    out = tmp_path_factory.mktemp("world") / "data"
    generate(SMALL, out, progress=lambda m: None)
    return out
