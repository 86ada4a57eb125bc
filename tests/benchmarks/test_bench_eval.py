"""benchmarks/bench_eval.py compares CPU processes with CPU processes, on a machine with a GPU too."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_eval.py"


def test_every_eval_command_runs_on_the_cpu(tmp_path, monkeypatch):
    """Was: no --device, so on a GPU machine the one-process run took the GPU (aerith eval's default) while the
    two accelerate processes ran on the CPU (ACCELERATE_USE_CPU): the ratio compared a GPU with two CPU halves."""
    spec = importlib.util.spec_from_file_location("bench_eval", PATH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    commands = []

    def run(cmd, **kwargs):
        commands.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.mkdir(parents=True)
        (out / "results.json").write_text(json.dumps({"counts": {"samples": bench.PROC_SAMPLES}}))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(bench.subprocess, "run", run)
    monkeypatch.setattr(bench.shutil, "which", lambda name: f"/usr/bin/{name}")
    for processes in (1, 2):
        bench._eval_command(tmp_path / "synthrs", tmp_path / f"p{processes}", processes, 1)
    assert len(commands) == 2
    for cmd in commands:
        assert cmd[cmd.index("--device") + 1] == "cpu", cmd
