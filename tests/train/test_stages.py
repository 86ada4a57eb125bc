"""Stages plug into the loop: the registry, the loop's independence of stage names, a stage added from outside.

Also: no import circle inside ``aerith/train`` (imports inside functions count too).
"""

import ast
import json
from pathlib import Path

import pytest

from aerith.train import stages
from aerith.train.commands import build_config
from aerith.train.loop import train
from aerith.train.sft import SFT, CausalSFTObjective
from aerith.train.stage import Stage
from tests.train.helpers import write_recipe

TRAIN = Path(__file__).resolve().parents[2] / "aerith" / "train"


def _imports(path: Path) -> set[str]:
    """``aerith.train.*`` modules imported anywhere in ``path`` except under ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aerith.train"):
            found.add(node.module)
            found.update(f"aerith.train.{a.name}" for a in node.names if (TRAIN / f"{a.name}.py").is_file())
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("aerith.train."))
    return found - {"aerith.train"}


def test_no_import_circle_inside_aerith_train():
    graph = {f"aerith.train.{p.stem}": _imports(p) for p in TRAIN.glob("*.py") if p.stem != "__init__"}
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(graph.get(module, ())):
            assert state.get(dep) != "open", f"import circle: {' -> '.join([*path, dep])}"
            if dep not in state:
                visit(dep, [*path, dep])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_the_loop_never_asks_which_stage_it_runs():
    source = (TRAIN / "loop.py").read_text()
    for name in stages.STAGES:
        assert f'"{name}"' not in source and f"'{name}'" not in source, name
    assert "hasattr(" not in source and "getattr(core" not in source
    assert '"scst"' not in (TRAIN / "backbones.py").read_text() and '"align"' not in (TRAIN / "backbones.py").read_text()


def test_registry_names_match_and_unknown_names_list_the_known():
    assert all(stage.name == name for name, stage in stages.STAGES.items())
    with pytest.raises(ValueError, match="stage must be one of align, sft, scst, got 'ppo'"):
        stages.get_stage("ppo")


class _MeanPerSample(CausalSFTObjective):
    """SFT whose loss is the mean per sample of each sample's summed answer-token loss, with its own stats."""

    def __init__(self, model):
        super().__init__(model)
        self.prepared = 0

    def prepare(self, batch):
        self.prepared += 1
        return batch

    def forward(self, batch):
        return super().forward(batch)  # summed over tokens; count() makes it a per-sample sum

    def count(self, batch):
        return int(batch["labels"].shape[0])

    def pop_stats(self):
        out, self.prepared = {"prepared_batches": float(self.prepared)}, 0
        return out


def test_a_stage_added_from_outside_runs_in_the_unchanged_loop(synthrs_root, tmp_path, monkeypatch):
    probe = Stage(name="probe", takes_samples=False, collate=SFT.collate, objective=lambda backbone, setup: _MeanPerSample(backbone.model))
    monkeypatch.setitem(stages.STAGES, "probe", probe)
    recipe = write_recipe(
        tmp_path / "probe.yaml", synthrs_root, tmp_path / "run", data={"batch_size": 2, "max_val_samples": 4},
        schedule={"max_steps": 2, "warmup_steps": 0}, optim={"grad_accum": 2},
        logging={"every": 1, "tensorboard": False, "progress": False},
    )  # fmt: skip
    recipe.write_text(recipe.read_text().replace("stage: sft", "stage: probe"))
    result = train(build_config("probe", recipe))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "loss" in r]
    assert [r["prepared_batches"] for r in steps] == [2.0, 2.0]  # grad_accum micro-batches, each prepared once
    assert [s for s, _ in result.val_loss] == [0, 2]  # the default validation: loss per counted term
    state = json.loads((result.final_dir / "trainer_state.json").read_text())
    assert state["stage"] == "probe" and state["step"] == 2
