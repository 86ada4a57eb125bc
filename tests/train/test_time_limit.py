"""``schedule.max_minutes``: a wall-clock limit on a run (what ``aerith quickstart`` budgets with)."""

import json

import pytest
import yaml

from aerith.data.synthrs import generate
from aerith.train.config import load_config
from aerith.train.loop import FINAL, STATE_FILE, lr_lambda, train


def test_lr_follows_whichever_of_steps_and_time_is_further():
    assert lr_lambda(10, 0, 100, "cosine", 0.0) > 0.9
    assert lr_lambda(10, 0, 100, "cosine", 0.0, time_progress=0.5) == pytest.approx(0.5)
    assert lr_lambda(10, 0, 100, "cosine", 0.1, time_progress=1.0) == pytest.approx(0.1)
    assert lr_lambda(90, 0, 100, "linear", 0.0, time_progress=0.2) == pytest.approx(0.1)  # steps further along
    assert lr_lambda(0, 5, 100, "cosine", 0.0, time_progress=1.0) == pytest.approx(0.2)  # warmup counts steps


def test_max_minutes_must_be_positive(tmp_path):
    path = tmp_path / "r.yaml"
    source = {"name": "synthrs", "root": str(tmp_path), "split": "train"}
    path.write_text(yaml.safe_dump({"stage": "sft", "out_dir": str(tmp_path / "run"), "data": {"train": [source]}}))
    assert load_config(path, ["schedule.max_minutes=0.5"]).schedule.max_minutes == 0.5
    with pytest.raises(ValueError, match="max_minutes must be > 0"):
        load_config(path, ["schedule.max_minutes=0"])


def test_run_stops_at_the_time_limit_and_saves_final(tmp_path):
    root = tmp_path / "synthrs"
    generate(root, n=24, size=32, seed=0)
    recipe = {
        "stage": "sft",
        "out_dir": str(tmp_path / "run"),
        "model": {"init": "aerith-tiny", "seed": 0, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
        "data": {
            "batch_size": 2,
            "max_val_samples": 4,
            "train": [{"name": "synthrs", "root": str(root), "split": "train", "options": {"task": "cls"}}],
            "val": [{"name": "synthrs", "root": str(root), "split": "val", "options": {"task": "cls"}}],
        },
        "optim": {"lr": 1.0e-3},
        "schedule": {"max_steps": 100000, "max_minutes": 0.02},
        "logging": {"every": 1000, "val_every": 0, "tensorboard": False, "progress": False},
    }
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    result = train(load_config(path))

    assert 1 <= result.steps < 100000
    state = json.loads((result.final_dir / STATE_FILE).read_text())
    assert state["step"] == result.steps and state["train_seconds"] >= 0.02 * 60
    assert (tmp_path / "run" / FINAL / "config.json").is_file()
    # the last step is logged and validated although it is not a multiple of logging.every
    assert [s for s, _ in result.val_loss] == [0, result.steps]
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    final = [m for m in metrics if m["step"] == result.steps and "loss" in m]
    assert final and final[0]["lr"] < 1e-3 * 0.05  # the schedule decayed with time, not with max_steps
