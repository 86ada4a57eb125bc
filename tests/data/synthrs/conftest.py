import json
from pathlib import Path

import pytest

from aerith.data.synthrs import generate


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """One small SynthRS set shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("synthrs") / "synthrs"
    generate(root, 120, 64, seed=11)
    return root


@pytest.fixture(scope="session")
def scenes(synth_root) -> list[dict]:
    return json.loads((synth_root / "scene_graphs.json").read_text())["scenes"]
