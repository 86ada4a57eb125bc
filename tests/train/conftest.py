from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.ucm.data import write_fake


@pytest.fixture(scope="session")
def ucm_root(tmp_path_factory) -> Path:
    """Fake UCM (21 classes, 2 train / 1 val / 1 test image each) with torchgeo split files."""
    return write_fake(tmp_path_factory.mktemp("ucm"), seed=0, split_files=True)
