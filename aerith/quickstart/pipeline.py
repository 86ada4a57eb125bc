"""``aerith quickstart``: SynthRS, aerith-tiny, align, sft, scst and eval in one command.

Everything runs offline on a CPU within a wall-clock budget (10 minutes by
default; ``minutes`` scales it): the training stages get time limits
(:data:`aerith.quickstart.budget.STAGE_SHARES`), the data, evaluation and report
take the rest. The run folder holds every stage's own output::

    OUT/quickstart.json     settings and, once finished, the stage times
    OUT/data/synthrs/       the generated scenes (aerith data synth)
    OUT/align, sft, scst/   training runs (aerith align / sft / scst)
    OUT/eval/<model>-<task> evaluation runs (aerith eval) on the held-out test split
    OUT/report/             report.md, results.json and the figures, written last and at once

The recipes are ``aerith/quickstart/recipes/{align,sft,scst}.yaml`` (read them to
see what each stage trains and why), with the run's paths, seeds and time limits
set from here.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aerith.atomic import atomic_write_text
from aerith.quickstart.budget import Budget, StageDisplay

MARKER = "quickstart.json"
CONFIGS = Path(__file__).resolve().parent / "recipes"
TASKS = ("cls", "vqa", "vg", "cap")
MAX_NEW_TOKENS = {"cls": 12, "vqa": 8, "vg": 16, "cap": 40}


@dataclass
class QuickstartSettings:
    """What ``aerith quickstart`` runs.

    Attributes:
        out: the run folder.
        minutes: the wall-clock budget; the training stages' time limits scale with it.
        seed: seeds the scenes, the model and the data order.
        overwrite: replace an earlier quickstart run in ``out``.
        scenes: SynthRS scenes (80/10/10 train/val/test); ``None``: 100 per budget minute, at least 200.
        size: scene size in pixels (aerith-tiny's CLIP tower reads 64 px).
        progress: show the live stage display.
    """

    out: Path = Path("quickstart")
    minutes: float = 10.0
    seed: int = 0
    overwrite: bool = False
    scenes: int | None = None
    size: int = 64
    progress: bool = True

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        if self.scenes is None:
            self.scenes = max(200, round(100 * self.minutes))
        if self.scenes < 50 or self.size < 32:
            raise ValueError(f"need at least 50 scenes of at least 32 px, got {self.scenes} of {self.size} px")


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
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _recipe(stage: str, overrides: list[str]):
    from aerith.train.config import load_config

    return load_config(CONFIGS / f"{stage}.yaml", overrides)


def _train(stage: str, settings: QuickstartSettings, budget: Budget, init: str, data_root: Path, extra: list[str]):
    from aerith.train.commands import run_stage

    overrides = [
        f"out_dir={settings.out / stage}",
        f"model.init={init}",
        f"model.seed={settings.seed}",
        f"seed={settings.seed}",
        f"schedule.max_minutes={budget.limit_minutes(stage)}",
        "logging.progress=false",
        *extra,
    ]
    config = _recipe(stage, overrides)
    for source in [*config.data.train, *config.data.val]:
        source.root = str(data_root)
    return run_stage(config)


def _evaluate(model_dir: Path, task: str, data_root: Path, out: Path) -> dict[str, Any]:
    from aerith.eval.runner import evaluate
    from aerith.infer.load import load_vlm

    vlm = load_vlm(model_dir)
    return evaluate(
        vlm, f"synthrs-{task}", data_root, out, batch_size=32, progress=False,
        generate_kwargs={"max_new_tokens": MAX_NEW_TOKENS[task]},
    )


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
    from aerith.quickstart.report import build_rows, write_report

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
            align = _train("align", settings, budget, "aerith-tiny", data_root, [])
        with display.stage("sft", "instruction tuning on cls, vqa, cap, vg"):
            sft = _train("sft", settings, budget, str(align.final_dir), data_root, [])
        with display.stage("eval", "captions of the SFT model"):
            evals["sft-cap"] = _evaluate(sft.final_dir, "cap", data_root, out / "eval" / "sft-cap")
        with display.stage("scst", "self-critical RL on captions"):
            scst = _train("scst", settings, budget, str(sft.final_dir), data_root, [])
        for task in TASKS:
            with display.stage("eval", f"final model, {task} on the test split"):
                evals[f"final-{task}"] = _evaluate(scst.final_dir, task, data_root, out / "eval" / f"final-{task}")
        with display.stage("report", "tables and figures"):
            rows = build_rows(data_root, evals)
            runs = {"align": align.run_dir, "sft": sft.run_dir, "scst": scst.run_dir}
            report = write_report(out, settings, budget, rows, evals, runs)
    result = QuickstartResult(out, report, rows, dict(budget.spent), budget.elapsed())
    info.update(status="finished", stage_seconds=result.stage_seconds, total_seconds=result.total_seconds, passed=result.passed)
    atomic_write_text(out / MARKER, json.dumps(info, indent=2) + "\n")
    return result
