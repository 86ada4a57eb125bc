"""`accelerate launch` with two gloo processes: the same answers, files and scores as one process, resuming per shard."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aerith.eval.runner import PREDICTIONS, RUN_INFO

REPO = Path(__file__).resolve().parents[2]
SETTINGS = ["--limit", "5", "--batch-size", "2", "--max-new-tokens", "3", "--no-progress"]


def _eval(args: list[str], launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    # One thread per process in both runs: a matrix product's float sums may be ordered by the
    # thread count, which has nothing to do with how the samples are shared.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "ACCELERATE_USE_CPU": "1"}
    cmd = [*(launcher or [sys.executable]), "-m", "aerith.cli", "eval", "aerith-tiny", *args, *SETTINGS]
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)


def _comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("generation", "run_dir")}


@pytest.mark.slow
def test_two_processes_give_one_process_results_and_resume_per_shard(roots, tmp_path):
    accelerate = shutil.which("accelerate")
    assert accelerate, "the accelerate launcher is not installed"
    suite = ["--suite", "seed", "--root", f"aid={roots['aid']}", "--root", f"rsvqa-lr={roots['rsvqa-lr']}"]
    one = _eval([*suite, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stdout + one.stderr

    # AID in the two-process folder was interrupted: answers 0-1 and half of 4 on rank 0, 2 on rank 1
    # (answer 3 never written); RSVQA-LR starts fresh
    lines = (tmp_path / "one" / "aid" / PREDICTIONS).read_bytes().splitlines(keepends=True)
    left = tmp_path / "two" / "aid"
    left.mkdir(parents=True)
    shutil.copy(tmp_path / "one" / "aid" / RUN_INFO, left / RUN_INFO)
    (left / "predictions.rank0.jsonl").write_bytes(lines[0] + lines[1] + lines[4][:40])
    (left / "predictions.rank1.jsonl").write_bytes(lines[2])

    two = _eval(
        [*suite, "--out", str(tmp_path / "two")],
        launcher=[accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                  "--mixed_precision", "no", "--dynamo_backend", "no"],
    )
    assert two.returncode == 0, two.stdout + two.stderr
    assert two.stdout.count("suite table in") == 1  # the main process reports, once

    for bench in ("aid", "rsvqa-lr"):
        a, b = tmp_path / "one" / bench, tmp_path / "two" / bench
        assert (b / PREDICTIONS).read_bytes() == (a / PREDICTIONS).read_bytes(), bench
        assert sorted(p.name for p in b.glob("predictions*")) == [PREDICTIONS]
        ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
        assert _comparable(rb) == _comparable(ra), bench
        assert rb["generation"]["processes"] == 2
    aid = json.loads((tmp_path / "two" / "aid" / "results.json").read_text())["generation"]
    assert aid["resumed"] == 3 and aid["generated"] == 2
    assert [p["generated"] for p in aid["per_process"]] == [2, 0]  # answers 3 and 4 make one batch of 2
    vqa = json.loads((tmp_path / "two" / "rsvqa-lr" / "results.json").read_text())["generation"]
    assert [p["generated"] for p in vqa["per_process"]] == [3, 2]  # batches of 2, 2, 1 dealt 0, 1, 0
    assert (tmp_path / "two" / "results.md").read_text() == (tmp_path / "one" / "results.md").read_text()


def test_a_launch_that_accelerate_did_not_set_up_is_refused(monkeypatch):
    # `accelerate launch --multi_gpu` on a CPU machine without ACCELERATE_USE_CPU: each process
    # comes up as rank 0 of 1 and would answer every sample into the same folder
    import accelerate

    from aerith.eval.distributed import Processes

    class OneProcess:
        def __init__(self, cpu: bool = False) -> None:
            self.process_index, self.num_processes = 0, 1

    monkeypatch.setattr(accelerate, "PartialState", OneProcess)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"launched as 2 processes \(WORLD_SIZE\) but accelerate set up 1"):
        Processes.from_environment()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert Processes.from_environment().world == 1
