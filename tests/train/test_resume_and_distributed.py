"""A killed run resumes exactly; two gloo processes match one process at the same global batch."""

import json
import shutil
import signal
import time

import pytest
import torch
from safetensors.torch import load_file

from aerith.train.commands import build_config
from aerith.train.loop import train, validation_shard
from tests.train.helpers import run_command, synthrs_sources, write_recipe


def _losses(run, key="loss"):
    return {r["step"]: r[key] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if key in r}


def _weights(folder):
    return load_file(folder / "model.safetensors")


def test_killed_run_resumes_to_the_same_weights_and_loss(synthrs_root, tmp_path):
    steps = 16
    sections = dict(schedule={"max_steps": steps, "warmup_steps": 2}, checkpoint={"every": 4, "keep_last": 2})
    straight = write_recipe(tmp_path / "a.yaml", synthrs_root, tmp_path / "straight", **sections)
    reference = train(build_config("sft", straight))

    killed = write_recipe(tmp_path / "b.yaml", synthrs_root, tmp_path / "killed", **sections)
    proc = run_command(["sft", str(killed)], wait=False)
    deadline = time.time() + 180
    while not (tmp_path / "killed" / "checkpoint-000004").exists():  # 12 steps of margin before the end
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() < deadline, "no checkpoint-000004 within 180 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "killed" / "checkpoint-final").exists(), "killed too late to test resuming"
    out = run_command(["sft", str(killed), "--resume"])
    assert out.returncode == 0, out.stdout + out.stderr

    a, b = _weights(reference.final_dir), _weights(tmp_path / "killed" / "checkpoint-final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name  # bit for bit
    la, lb = _losses(tmp_path / "straight"), _losses(tmp_path / "killed")
    assert sorted(lb) == list(range(1, steps + 1))  # the resumed run rewrote what came after its checkpoint
    torch.testing.assert_close(torch.tensor([lb[s] for s in la]), torch.tensor(list(la.values())), rtol=0, atol=0)
    state = json.loads((tmp_path / "killed" / "checkpoint-final" / "trainer_state.json").read_text())
    assert state["step"] == steps


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(synthrs_root, tmp_path):
    accelerate = shutil.which("accelerate")
    assert accelerate, "the accelerate launcher is not installed"
    # 5 validation items: 2 batches on process 0 and 1 on process 1, which must still run a second forward
    val = {"val": synthrs_sources(synthrs_root, "val", ("cap", "cls")), "max_val_samples": 5}
    sections = dict(data={**val, "batch_size": 2}, schedule={"max_steps": 12, "warmup_steps": 2}, checkpoint={"every": 6})
    two = write_recipe(tmp_path / "two.yaml", synthrs_root, tmp_path / "two", **sections)
    # accelerate 1.15's `launch --cpu --num_processes 2` starts ONE process unless MPI is set up;
    # the torchrun launcher with ACCELERATE_USE_CPU=1 gives two gloo processes (MULTI_CPU).
    launcher = [accelerate, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no"]  # fmt: skip
    out = run_command(["sft", str(two)], launcher=launcher, threads=1, env={"ACCELERATE_USE_CPU": "1"}, timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("; model in ") == 1, out.stdout  # the main process reports, once
    state = json.loads((tmp_path / "two" / "checkpoint-final" / "trainer_state.json").read_text())
    assert state["world_size"] == 2 and state["global_batch"] == 4

    one = write_recipe(tmp_path / "one.yaml", synthrs_root, tmp_path / "one", **{**sections, "data": {**val, "batch_size": 4}})
    train(build_config("sft", one))
    l1, l2 = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(l1) == sorted(l2) == list(range(1, 13))
    torch.testing.assert_close(torch.tensor([l2[s] for s in l1]), torch.tensor(list(l1.values())), rtol=1e-5, atol=1e-5)
    v1, v2 = _losses(tmp_path / "one", "val_loss"), _losses(tmp_path / "two", "val_loss")
    assert sorted(v1) == sorted(v2) == [0, 12]  # the padding forward of process 1 is not counted
    torch.testing.assert_close(torch.tensor([v2[s] for s in v1]), torch.tensor(list(v1.values())), rtol=1e-5, atol=1e-5)

    # A resume that one process cannot make exactly (its RNG state is gone) is refused by both,
    # rather than leaving the other waiting at a collective (the timeout would catch a hang).
    shutil.rmtree(tmp_path / "two" / "checkpoint-final")
    (tmp_path / "two" / "checkpoint-000006" / "accelerate_state" / "random_states_1.pkl").unlink()
    out = run_command(["sft", str(two), "--resume"], launcher=launcher, threads=1, env={"ACCELERATE_USE_CPU": "1"}, timeout=240)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "random_states_1.pkl is missing" in text, text
    assert "process 1 cannot start" in text, text  # what process 0 says
    assert not (tmp_path / "two" / "checkpoint-final").exists()


@pytest.mark.parametrize("n, world, batch_size", [(5, 2, 2), (1, 2, 4), (3, 4, 1), (8, 2, 2), (7, 3, 2)])
def test_every_process_runs_as_many_validation_batches(n, world, batch_size):
    """A process with fewer batches left the others waiting in a forward's collective (DDP's buffer broadcast)."""
    items = list(range(n))
    shards = [validation_shard(items, rank, world, batch_size) for rank in range(world)]
    assert len({len(batches) for batches, _ in shards}) == 1
    counted = [item for batches, k in shards for batch in batches[:k] for item in batch]
    assert sorted(counted) == items  # each item counted once, and padding never
    assert all(len(batch) <= batch_size for batches, _ in shards for batch in batches)
    assert validation_shard([], 0, world, batch_size) == ([], 0)
