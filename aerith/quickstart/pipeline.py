"""``aerith quickstart``: SynthRS, aerith-tiny, align, sft, scst and eval in one command.

Everything runs offline on a CPU within a wall-clock budget (10 minutes by
default; ``minutes`` scales it): the training stages get time limits
(:data:`aerith.quickstart.budget.STAGE_SHARES`), the data, evaluation and report
take the rest. The run folder holds every stage's own output::

    OUT/quickstart.json     settings and, once finished, the stage times
    OUT/data/synthrs/       the generated scenes (aerith data synth)
    OUT/init/               the random starting model (recipes/model.yaml)
    OUT/align, sft, scst/   training runs (aerith align / sft / scst)
    OUT/box_fit/            the box head fitted on the final model's frozen features (aerith fit-box-head;
                            when recipes/model.yaml gives the model a box head)
    OUT/eval/<model>-<task> evaluation runs (aerith eval) on the held-out test split
    OUT/report/             report.md, results.json and the figures, written last and at once

The recipes are ``aerith/quickstart/recipes/{model,align,sft,scst,box_fit}.yaml`` (read them to
see what each stage trains and why), with the run's paths, seeds and time limits
set from here (:mod:`aerith.quickstart.stages`).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aerith.atomic import atomic_write_text
from aerith.quickstart.budget import Budget, StageDisplay

MARKER = "quickstart.json"
TASKS = ("cls", "vqa", "vg", "cap")


@dataclass
class QuickstartSettings:
    """What ``aerith quickstart`` runs.

    Attributes:
        out: the run folder.
        minutes: the wall-clock budget; the training stages' time limits scale with it.
        seed: seeds the scenes, the model and the data order.
        overwrite: replace an earlier quickstart run in ``out``.
        scenes: SynthRS scenes (80/10/10 train/val/test); ``None``: 100 per budget minute, at least 200.
        size: scene size in pixels; ``None``: the CLIP tower's input size in ``recipes/model.yaml``.
        progress: show the live stage display.
    """

    out: Path = Path("quickstart")
    minutes: float = 10.0
    seed: int = 0
    overwrite: bool = False
    scenes: int | None = None
    size: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if not (math.isfinite(self.minutes) and self.minutes > 0):  # inf and nan crashed the scene count below
            raise ValueError(f"--minutes must be a number > 0, got {self.minutes}")
        if self.scenes is None:
            self.scenes = max(200, round(100 * self.minutes))
        if self.size is None:
            from aerith.quickstart.stages import load_model_recipe

            self.size = load_model_recipe().image_size
        if self.scenes < 50:
            raise ValueError(f"--scenes must be at least 50, got {self.scenes}")
        if self.size < 32:
            raise ValueError(f"scenes must be at least 32 px, got {self.size} px")


@dataclass
class QuickstartResult:
    """Where everything went, the table rows and whether each learning check passed."""

    out: Path
    report: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(r["pass"] for r in self.rows if r.get("pass") is not None)


def prepare_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless ``overwrite``; even then, only an earlier quickstart's folder is cleared."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out} exists and is not empty; pass --overwrite to replace an earlier quickstart run there, or choose another --out")
        if not (out / MARKER).is_file():
            raise FileExistsError(
                f"{out} is not empty and holds no {MARKER}, so it is not a quickstart run; --overwrite only replaces "
                "quickstart runs. Choose another --out"
            )
        if out.is_symlink():
            raise FileExistsError(f"{out} is a symbolic link; --overwrite does not clear a run through a link: give the folder itself")
        for entry in out.iterdir():  # the contents, not the folder: `--out .` is cleared too (rmtree('.') fails after)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    out.mkdir(parents=True, exist_ok=True)


def _train(stage: str, settings: QuickstartSettings, budget: Budget, init: str | Path, data_root: Path):
    from aerith.quickstart.stages import train_stage

    return train_stage(stage, settings.out / stage, init, data_root, settings.seed, max_minutes=budget.limit_minutes(stage))


def _evaluate(model: Any, task: str, data_root: Path, out: Path) -> dict[str, Any]:
    from aerith.quickstart.stages import evaluate_task

    return evaluate_task(model, task, data_root, out)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Hide transformers' per-save and per-load progress bars and warnings under the stage display; restored after."""
    from transformers.utils import logging as hf_logging

    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def run_quickstart(settings: QuickstartSettings) -> QuickstartResult:
    """Run the whole pipeline and write the report; see the module docstring for the folder layout."""
    from aerith.data.synthrs import generate
    from aerith.infer.load import load_vlm
    from aerith.quickstart.report import build_rows, write_report
    from aerith.quickstart.stages import build_initial_model, fit_box_head_stage, load_model_recipe

    budget = Budget(settings.minutes)
    prepare_out_dir(settings.out, settings.overwrite)
    out = settings.out
    info: dict[str, Any] = {"settings": {**asdict(settings), "out": str(out)}, "status": "running"}
    atomic_write_text(out / MARKER, json.dumps(info, indent=2) + "\n")
    data_root = out / "data" / "synthrs"
    evals: dict[str, dict[str, Any]] = {}
    with quiet_transformers(), StageDisplay(budget, settings.progress) as display:
        with display.stage("synth", f"{settings.scenes} SynthRS scenes of {settings.size} px"):
            generate(data_root, n=settings.scenes, size=settings.size, seed=settings.seed)
        with display.stage("align", "DINOv3 -> CLIP head"):
            init = build_initial_model(out / "init", load_model_recipe(), settings.seed)
            align = _train("align", settings, budget, init, data_root)
        with display.stage("sft", "instruction tuning on cls, vqa, cap, vg"):
            sft = _train("sft", settings, budget, align.final_dir, data_root)
        with display.stage("eval", "captions of the SFT model"):
            evals["sft-cap"] = _evaluate(sft.final_dir, "cap", data_root, out / "eval" / "sft-cap")
        with display.stage("scst", "self-critical RL on captions"):
            scst = _train("scst", settings, budget, sft.final_dir, data_root)
        runs = {"align": align.run_dir, "sft": sft.run_dir, "scst": scst.run_dir}
        final_dir = scst.final_dir
        if load_model_recipe().config().box_head:
            with display.stage("box_fit", "the box head on frozen features, flipped"):
                final_dir = fit_box_head_stage(
                    out / "box_fit", scst.final_dir, data_root, settings.seed, max_minutes=budget.limit_minutes("box_fit")
                )
            runs["box_fit"] = out / "box_fit"
        final = load_vlm(final_dir)
        for task in TASKS:
            with display.stage("eval", f"final model, {task} on the test split"):
                evals[f"final-{task}"] = _evaluate(final, task, data_root, out / "eval" / f"final-{task}")
        with display.stage("report", "tables and figures"):
            rows = build_rows(data_root, evals)
            report = write_report(out, settings, budget, rows, evals, runs)
    result = QuickstartResult(out, report, rows, dict(budget.spent), budget.elapsed())
    info.update(status="finished", stage_seconds=result.stage_seconds, total_seconds=result.total_seconds, passed=result.passed)
    atomic_write_text(out / MARKER, json.dumps(info, indent=2) + "\n")
    return result
