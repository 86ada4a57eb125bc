from __future__ import annotations

from pathlib import Path

import pytest

from aerith.data.synthrs import generate


@pytest.fixture(scope="session")
def synthrs_root(tmp_path_factory) -> Path:
    """A SynthRS set of 40 scenes at 64 px (32 train / 4 val / 4 test), read for all four tasks."""
    root = tmp_path_factory.mktemp("synthrs")
    generate(root, n=40, size=64, seed=0)
    return root
