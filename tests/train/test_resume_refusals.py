"""``--resume`` continues exactly or refuses, naming the file or the recipe keys, and a refusal changes nothing.

One short SFT run (2 steps, a checkpoint after step 1, ``checkpoint-final`` removed as if it
had been killed) is copied for each case.
"""

import json
import random
import shutil

import pytest
import torch
import yaml
from typer.testing import CliRunner

from aerith.cli import app
from aerith.train.commands import build_config
from aerith.train.loop import train
from aerith.train.run_folder import ResumeError, RunStart, check_recipe, check_rng_restored, check_steps_left, diff_trees
from tests.train.helpers import write_recipe

CKPT = "checkpoint-000001"


@pytest.fixture(scope="module")
def interrupted(synthrs_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("resume")
    recipe = write_recipe(
        tmp / "r.yaml", synthrs_root, tmp / "run", data={"val": [], "batch_size": 2},
        schedule={"max_steps": 2, "warmup_steps": 0}, checkpoint={"every": 1, "keep_last": 2},
        logging={"every": 1, "tensorboard": False, "progress": False},
    )  # fmt: skip
    train(build_config("sft", recipe))
    shutil.rmtree(tmp / "run" / "checkpoint-final")
    return recipe, tmp / "run"


@pytest.fixture
def run(interrupted, tmp_path):
    """A fresh copy of the interrupted run and its recipe: ``(recipe, run_dir)``."""
    recipe, run_dir = interrupted
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    tree = yaml.safe_load(recipe.read_text())
    tree["out_dir"] = str(copy)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(tree))
    return tmp_path / "r.yaml", copy


def _resume(recipe, *args, command="sft"):
    result = CliRunner().invoke(app, [command, str(recipe), "--resume", *args])
    return result.exit_code, " ".join(result.output.split())


def _refused(run_dir, code, out):
    assert code == 2 and "Traceback" not in out, out
    assert not (run_dir / "checkpoint-final").exists()


def test_another_stages_recipe_is_refused_and_the_config_kept(run, synthrs_root, tmp_path):
    recipe, run_dir = run
    saved = (run_dir / "config.yaml").read_bytes()
    scst = write_recipe(tmp_path / "scst.yaml", synthrs_root, run_dir, stage="scst")
    code, out = _resume(scst, command="scst")
    _refused(run_dir, code, out)
    assert "the recipe differs from the run's" in out and "stage: 'sft' -> 'scst'" in out, out
    assert (run_dir / "config.yaml").read_bytes() == saved


def test_a_changed_recipe_names_the_keys_that_differ(run):
    recipe, run_dir = run
    saved = (run_dir / "config.yaml").read_bytes()
    code, out = _resume(recipe, "--set", "optim.lr=0.5", "--set", "data.batch_size=3", "--set", "logging.every=5")
    _refused(run_dir, code, out)
    assert "optim.lr: 0.001 -> 0.5" in out and "data.batch_size: 2 -> 3" in out and "logging.every" not in out.split("differs")[1].split(". On resume")[0], out
    assert "On resume only out_dir, model.init, model.seed, schedule.max_steps, schedule.max_minutes, checkpoint, logging" in out
    assert (run_dir / "config.yaml").read_bytes() == saved


def _incomplete_rng(path):
    torch.save({"random_state": random.getstate()}, path)


def _set_world(path, n):
    state = json.loads(path.read_text())
    path.write_text(json.dumps({**state, "world_size": n}))


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda c: (c / "accelerate_state" / "random_states_0.pkl").unlink(), "the RNG state {ckpt}/accelerate_state/random_states_0.pkl is missing"),
        (lambda c: (c / "accelerate_state" / "random_states_0.pkl").write_bytes(b"\x80\x04garbage"), "the RNG state {ckpt}/accelerate_state/random_states_0.pkl cannot be read"),
        (lambda c: _incomplete_rng(c / "accelerate_state" / "random_states_0.pkl"), "random_states_0.pkl lacks numpy_random_seed, torch_manual_seed"),
        (lambda c: (c / "accelerate_state" / "optimizer.bin").write_bytes(b""), "{ckpt}/accelerate_state/optimizer.bin is empty"),
        (lambda c: (c / "accelerate_state" / "scheduler.bin").unlink(), "{ckpt}/accelerate_state/scheduler.bin is missing"),
        (lambda c: (c / "trainer_state.json").write_text('{"step": 1,'), "{ckpt}/trainer_state.json cannot be read"),
        (lambda c: (c / "trainer_state.json").unlink(), "{ckpt}/trainer_state.json is missing"),
        (lambda c: _set_world(c / "trainer_state.json", 2), "was written by 2 process(es), this run has 1"),
        (lambda c: (c.parent / "config.yaml").unlink(), "config.yaml is missing, so the recipe cannot be checked"),
    ],
    ids=["rng-missing", "rng-garbage", "rng-incomplete", "optimizer-empty", "scheduler-missing", "state-corrupt",
         "state-missing", "world-size", "config-missing"],
)  # fmt: skip
def test_a_damaged_checkpoint_is_refused_naming_the_file(run, damage, message):
    recipe, run_dir = run
    ckpt = run_dir / CKPT
    damage(ckpt)
    saved = (run_dir / "config.yaml").read_bytes() if (run_dir / "config.yaml").exists() else None
    code, out = _resume(recipe)
    _refused(run_dir, code, out)
    assert message.format(ckpt=ckpt) in out, out
    if "config.yaml" not in message and "process(es)" not in message:
        assert "Delete it to resume from the checkpoint before it, or start a new run from its weights (--init" in out, out
    if saved is not None:
        assert (run_dir / "config.yaml").read_bytes() == saved


def test_a_corrupt_optimizer_state_is_refused_when_loaded(run):
    recipe, run_dir = run
    (run_dir / CKPT / "accelerate_state" / "optimizer.bin").write_bytes(b"PK\x03\x04 not a torch file")
    saved = (run_dir / "config.yaml").read_bytes()
    code, out = _resume(recipe)
    _refused(run_dir, code, out)
    assert f"{run_dir / CKPT / 'accelerate_state'} cannot be loaded" in out, out
    assert (run_dir / "config.yaml").read_bytes() == saved


def test_an_rng_state_not_restored_is_refused(tmp_path):
    """What :func:`check_rng_restored` guards against: accelerate skipping the RNG file without an error."""
    import numpy as np

    torch.manual_seed(1)
    states = {"random_state": random.getstate(), "numpy_random_seed": np.random.get_state(), "torch_manual_seed": torch.get_rng_state()}
    start = RunStart(tmp_path, tmp_path / CKPT, {"step": 1}, tmp_path / "random_states_0.pkl", states)
    check_rng_restored(start)  # the live state is the saved one
    torch.manual_seed(2)
    with pytest.raises(ResumeError, match="random_states_0.pkl was not restored"):
        check_rng_restored(start)


def test_changeable_fields_may_change_on_resume(run):
    recipe, run_dir = run
    code, out = _resume(recipe, "--set", "schedule.max_steps=3", "--set", "logging.every=2", "--set", "checkpoint.keep_last=1")
    assert code == 0, out
    state = json.loads((run_dir / "checkpoint-final" / "trainer_state.json").read_text())
    assert state["step"] == 3
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["schedule"]["max_steps"] == 3 and saved["logging"]["every"] == 2  # the run's recipe follows the resume


def test_a_resume_to_no_more_steps_than_its_checkpoint_is_refused_untouched(run):
    recipe, run_dir = run
    before = {p: p.read_bytes() for p in (run_dir / "metrics.jsonl", run_dir / "config.yaml", run_dir / CKPT / "trainer_state.json")}
    code, out = _resume(recipe, "--max-steps", "1")
    _refused(run_dir, code, out)
    assert f"{run_dir / CKPT} is at step 1 and schedule.max_steps is 1: nothing is left to train" in out, out
    assert {p: p.read_bytes() for p in before} == before


def test_a_finished_run_is_not_replaced_by_a_resume_to_fewer_or_as_many_steps(run):
    recipe, run_dir = run
    final = run_dir / "checkpoint-final"
    shutil.copytree(run_dir / CKPT, final)
    _set_step(final / "trainer_state.json", 3)  # as if the run had finished 3 steps
    before = {p: p.read_bytes() for p in (run_dir / "metrics.jsonl", final / "trainer_state.json")}
    for max_steps in ("2", "3"):
        code, out = _resume(recipe, "--max-steps", max_steps)
        assert code == 2 and "Traceback" not in out, out
        assert f"the run is finished: {final} holds step 3 and schedule.max_steps is {max_steps}" in out, out
    assert {p: p.read_bytes() for p in before} == before



def test_a_run_finished_by_its_time_limit_is_not_replaced_by_a_resume_to_that_limit(run):
    """It trained again from the step checkpoint to the same limit and replaced checkpoint-final."""
    recipe, run_dir = run
    final = run_dir / "checkpoint-final"
    shutil.copytree(run_dir / CKPT, final)
    state = json.loads((final / "trainer_state.json").read_text())
    (final / "trainer_state.json").write_text(json.dumps({**state, "train_seconds": 90.0}))  # stopped at 1.5 minutes
    before = {p: p.read_bytes() for p in (run_dir / "metrics.jsonl", final / "trainer_state.json", final / "model.safetensors")}
    code, out = _resume(recipe, "--set", "schedule.max_minutes=1.5")
    assert code == 2 and "Traceback" not in out, out
    assert f"the run is finished: {final} holds step 1 after 1.50 minutes of training, and schedule.max_minutes is 1.5" in out, out
    assert "--set schedule.max_minutes above 1.50 (or null)" in out, out
    assert {p: p.read_bytes() for p in before} == before
    config = build_config("sft", recipe, ["schedule.max_minutes=2"])
    check_steps_left(config, run_dir / CKPT, 1)  # a longer limit trains on

def _set_step(path, step):
    path.write_text(json.dumps({**json.loads(path.read_text()), "step": step}))


@pytest.mark.parametrize(
    "model, shown",
    [({"seed": 7}, "model.seed: 0 -> 7"), ({"init": "aerith-tiny"}, "model.init: '/runs/sft/checkpoint-final' -> 'aerith-tiny'")],
)
def test_scst_with_a_kl_penalty_refuses_another_starting_model_on_resume(tmp_path, model, shown):
    """The KL reference is rebuilt from model.init and model.seed on resume: changing them would swap it."""
    from aerith.train.config import TrainConfig, dump_config

    def recipe(kl, **changes):
        return TrainConfig(
            stage="scst", out_dir=str(tmp_path), data={"train": [{"name": "synthrs", "root": str(tmp_path)}]},
            model={"init": "/runs/sft/checkpoint-final", "seed": 0, **changes}, scst={"kl": kl},
        )  # fmt: skip

    saved = tmp_path / "config.yaml"
    saved.write_text(dump_config(recipe(0.3)))
    with pytest.raises(ResumeError, match="KL penalty") as refused:
        check_recipe(recipe(0.3, **model), saved)
    assert shown in str(refused.value)
    with pytest.raises(ResumeError) as other:  # another field: no word about the KL reference
        check_recipe(TrainConfig(**{**recipe(0.3).to_dict(), "seed": 5}), saved)
    assert "seed: 0 -> 5" in str(other.value) and "KL penalty" not in str(other.value)
    saved.write_text(dump_config(recipe(0.0)))
    check_recipe(recipe(0.0, **model), saved)  # without the penalty the checkpoint's weights are all that count


def test_diff_names_nested_and_list_keys():
    old = {"a": 1, "data": {"train": [{"root": "/x", "weight": 1.0}]}, "trainable": ["pooler"]}
    new = {"a": 1, "data": {"train": [{"root": "/y", "weight": 1.0}, {"root": "/z"}]}, "trainable": ["pooler", "lora"]}
    keys = [k for k, _, _ in diff_trees(old, new)]
    assert keys == ["data.train.0.root", "trainable", "data.train.1.root"]


def test_a_metrics_line_cut_by_a_kill_is_dropped_and_counted(tmp_path, capsys):
    from aerith.train.config import TrainConfig
    from aerith.train.tracking import MetricsLog

    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in (1, 2, 3)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 4, "lo')
    config = TrainConfig(data={"train": [{"name": "synthrs", "root": str(tmp_path)}]}, logging={"tensorboard": False, "progress": False})
    MetricsLog(tmp_path, config, start_step=2, active=True, resumed=True).close()
    assert (tmp_path / "metrics.jsonl").read_text().splitlines() == lines[:2]
    assert "dropped 1 unreadable line(s)" in capsys.readouterr().out
