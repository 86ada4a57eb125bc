"""Fake dataset roots and a tiny model shared by the eval tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fakes.aid.data import write_fake as write_aid
from tests.fakes.dior_rsvg.data import write_fake as write_dior
from tests.fakes.rsicd.data import write_fake as write_rsicd
from tests.fakes.rsvqa_lr.data import write_fake as write_rsvqa_lr
from tests.fakes.ucm.data import write_fake as write_ucm


@pytest.fixture(scope="session")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("eval-data")
    return {
        "aid": write_aid(base / "aid"),
        "dior-rsvg": write_dior(base / "dior"),
        "rsvqa-lr": write_rsvqa_lr(base / "rsvqa-lr"),
        "rsicd": write_rsicd(base / "rsicd"),
        "ucm": write_ucm(base / "ucm"),
    }


@pytest.fixture(scope="session")
def tiny():
    """aerith-tiny with random weights on the CPU, built once."""
    from aerith.infer.vlm import AerithVLM

    return AerithVLM.from_preset("aerith-tiny", seed=0, device="cpu")
