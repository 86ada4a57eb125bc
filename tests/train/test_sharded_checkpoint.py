"""A checkpoint written by a run sharded with FSDP2 over two gloo processes loads in one process to identical logits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.train.sharded_training import batch

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tests" / "train" / "sharded_training.py"


def _run(cmd: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    out = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("connector", ["pooler", "mlp"])
def test_fsdp_checkpoint_reloads_to_identical_logits(tmp_path, connector):
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", str(SCRIPT), str(tmp_path / "fsdp"), connector])
    _run([sys.executable, str(SCRIPT), str(tmp_path / "one"), connector])
    assert json.loads((tmp_path / "fsdp" / "sharded.json").read_text()) == {"world": 2, "dtensor_parameters": True}

    from aerith.infer.load import load_vlm

    # the sharded run took the steps one process takes on the same global batches
    l2, l1 = (json.loads((tmp_path / d / "losses.json").read_text()) for d in ("fsdp", "one"))
    torch.testing.assert_close(torch.tensor(l2), torch.tensor(l1), rtol=1e-5, atol=1e-5)
    assert l2[-1] < l2[0]

    vlm = load_vlm(tmp_path / "fsdp" / "model", device="cpu")
    assert vlm.model.config.connector == connector and vlm.training_state == "3 steps, 2 process(es)"
    probe = {k: v for k, v in batch(vlm.processor, seed=100).items() if k != "labels"}
    with torch.no_grad():
        logits = vlm.model(**probe).logits
    sharded = torch.load(tmp_path / "fsdp" / "logits.pt")
    torch.testing.assert_close(logits, sharded, rtol=0, atol=0)  # the sharded model's own outputs, bit for bit
    torch.testing.assert_close(logits, torch.load(tmp_path / "one" / "logits.pt"), rtol=1e-4, atol=1e-4)
