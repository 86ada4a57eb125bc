"""``aerith ablate``: train and evaluate every variant of a grid on SynthRS, per seed, at a fixed step budget.

Layout of the output folder::

    OUT/ablation.json            settings, machine, date and every run's scores (rewritten as runs finish)
    OUT/ablation.md              the table: mean and spread over seeds per variant, of every finished run in
                                 OUT (a later ``--only`` or ``--seeds`` adds its runs to the earlier ones)
    OUT/ablation.png             the plot of the headline metrics
    OUT/data/seed-S/             the SynthRS set of seed S (scenes and model seeds are the same S)
    OUT/runs/<variant>/seed-S/   init, align, sft (or scst) runs, eval/<task>/ and scores.json

Each variant trains for the same number of optimizer steps (not minutes), so
the table does not depend on how busy the machine was; the seconds each run
took are recorded beside. A run whose ``scores.json`` exists is not redone, so
an interrupted ablation continues where it stopped (the run it was in starts again).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from aerith.ablate.grid import Variant, check_grid, full_grid, quick_grid
from aerith.atomic import atomic_write_text

SFT_TASKS = ("cls", "vqa", "vg", "cap")


@dataclass
class AblationSettings:
    """What ``aerith ablate`` runs.

    Attributes:
        out: the output folder (an earlier ablation there is continued).
        quick: the smallest grid at a few steps (the test suite runs it): plumbing, not results.
        seeds: seeds of the scenes, the models and the data order.
        scenes: SynthRS scenes per seed.
        align_steps, sft_steps, scst_steps: the fixed budget of every variant.
        box_fit_steps: steps of the box head's fit on the SFT model's frozen features (the rest of
            ``recipes/box_fit.yaml`` as it is), for a recipe with a box head; every task is then
            scored on the fitted model (the fit changes only the head).
        eval_limit: evaluate the first N test samples of each task (``None``: all).
        only: run only the variants of these names (and what their SCST starts from).
    """

    out: Path = Path("ablation")
    quick: bool = False
    seeds: tuple[int, ...] = (0, 1, 2)
    scenes: int = 1000
    align_steps: int = 50
    sft_steps: int = 1000
    scst_steps: int = 200
    box_fit_steps: int = 1500
    eval_limit: int | None = None
    only: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.seeds = tuple(int(s) for s in self.seeds)
        self.only = tuple(self.only or ())
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if min(self.seeds) < 0:
            raise ValueError(f"--seeds must be >= 0, got {list(self.seeds)}")
        if self.scenes < 50:
            raise ValueError(f"--scenes must be >= 50, got {self.scenes}")
        for name in ("align_steps", "sft_steps", "scst_steps", "box_fit_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.eval_limit is not None and self.eval_limit < 1:
            raise ValueError(f"--eval-limit must be >= 1, got {self.eval_limit}")

    @classmethod
    def quick_settings(cls, out: Path, *, only: tuple[str, ...] = (), eval_limit: int | None = None) -> AblationSettings:
        """The ``--quick`` grid's budget: one seed, 60 scenes, a few steps, 8 test samples per task (or ``eval_limit``)."""
        return cls(out=out, quick=True, seeds=(0,), scenes=60, align_steps=1, sft_steps=4, scst_steps=2, box_fit_steps=2,
                   eval_limit=8 if eval_limit is None else eval_limit, only=only)


@dataclass
class AblationResult:
    out: Path
    table: Path
    plot: Path
    runs: list[dict[str, Any]] = field(default_factory=list)


def slug(name: str) -> str:
    """A folder name for a variant: ``"SCST: + SG-F1"`` -> ``"scst-sg-f1"``."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def whole_grid(settings: AblationSettings) -> list[Variant]:
    """The quick or the full grid, every variant (the table's order)."""
    from aerith.quickstart.stages import load_model_recipe, load_recipe_rewards

    factual = load_recipe_rewards()
    if settings.quick:
        variants = quick_grid(factual)
    else:
        recipe = load_model_recipe()
        config = recipe.config()
        variants = full_grid(factual, config.connector, config.num_queries)
    check_grid(variants)
    return variants


def grid_for(settings: AblationSettings, grid: list[Variant] | None = None) -> list[Variant]:
    """The variants to run: the quick or the full grid (``grid``, if already read), narrowed by ``only``."""
    variants = whole_grid(settings) if grid is None else grid
    if settings.only:
        names = {v.name for v in variants}
        unknown = sorted(set(settings.only) - names)
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; the grid has: {', '.join(v.name for v in variants)}")
        wanted = set(settings.only) | {v.scst_from for v in variants if v.name in settings.only and v.scst_from}
        variants = [v for v in variants if v.name in wanted]
    return variants


def _scores(evals: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The table's metrics from the evaluation results (fractions; missing tasks left out)."""
    from aerith.data.synthrs.grammar import well_formed_share
    from aerith.quickstart.stages import read_predictions

    out: dict[str, float] = {}
    if "cls" in evals:
        out["cls_accuracy"] = evals["cls"]["scores"]["accuracy"]
    if "vqa" in evals:
        vqa = evals["vqa"]["scores"]
        out["vqa_oa"] = vqa["OA"]
        count = vqa.get("per_type", {}).get("count")
        if count is not None:
            out["vqa_count"] = count["accuracy"] if isinstance(count, dict) else count
    if "vg" in evals:
        out["vg_acc50"] = evals["vg"]["scores"]["acc@0.5"]
        out["vg_miou"] = evals["vg"]["scores"]["mean_iou"]
    if "cap" in evals:
        cap = evals["cap"]["scores"]
        out["cider"] = cap["CIDEr-D"]
        out["sg_f1"] = cap["SG-F1"]
        out["hallucination"] = cap["hallucination_rate"]
        out["well_formed"] = well_formed_share([r["answer"] for r in read_predictions(evals["cap"])])
    return out


def definition(variant: Variant) -> dict[str, Any]:
    """What a variant changes, as its runs record it (JSON types): a finished run is reused only for the same."""
    made = {
        "model": dict(variant.model), "coordinate_init": variant.coordinate_init, "sft": list(variant.sft),
        "rewards": None if variant.rewards is None else dict(variant.rewards), "scst_from": variant.scst_from,
    }
    return json.loads(json.dumps(made))  # as read back from scores.json (tuples as lists)


def run_variant(
    variant: Variant, seed: int, settings: AblationSettings, data_root: Path, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Train and evaluate one variant for one seed; writes and returns its ``scores.json`` record.

    A folder without ``scores.json`` is a run that was stopped part way: it is deleted and run
    again from the start (the same steps and seeds give the same run).
    """
    from aerith.infer.load import load_vlm
    from aerith.quickstart.stages import build_initial_model, evaluate_task, fit_box_head_stage, load_model_recipe, train_stage

    run_dir = settings.out / "runs" / slug(variant.name) / f"seed-{seed}"
    record_path = run_dir / "scores.json"
    if record_path.is_file():
        return read_record(record_path, variant.name, seed, definition(variant))
    if run_dir.exists():
        echo(f"[{variant.name} | seed {seed}] {run_dir} holds an unfinished run: starting it again")
        shutil.rmtree(run_dir)
    tic = time.monotonic()
    evals: dict[str, dict[str, Any]] = {}
    steps: dict[str, int] = {}
    if variant.trains_sft:
        recipe = load_model_recipe().with_changes(variant.model, variant.coordinate_init)
        init = build_initial_model(run_dir / "init", recipe, seed)
        align = train_stage("align", run_dir / "align", init, data_root, seed, max_steps=settings.align_steps)
        sft = train_stage("sft", run_dir / "sft", align.final_dir, data_root, seed, max_steps=settings.sft_steps,
                          extra=variant.sft)
        steps.update(align=align.steps, sft=sft.steps)
        final = sft.final_dir
        if recipe.config().box_head:
            final = fit_box_head_stage(run_dir / "box_fit", sft.final_dir, data_root, seed, steps=settings.box_fit_steps)
            steps["box_fit"] = settings.box_fit_steps
        train_s = time.monotonic() - tic
        vlm = load_vlm(final)
        for task in SFT_TASKS:
            evals[task] = evaluate_task(vlm, task, data_root, run_dir / "eval" / task, settings.eval_limit)
    else:
        base = settings.out / "runs" / slug(variant.scst_from) / f"seed-{seed}" / "sft" / "checkpoint-final"
        if not (base / "config.json").is_file():
            raise FileNotFoundError(f"{base}: the SFT model of {variant.scst_from!r} (seed {seed}) is missing")
        weights = json.dumps(dict(variant.rewards), separators=(",", ":"))
        scst = train_stage("scst", run_dir / "scst", base, data_root, seed, max_steps=settings.scst_steps,
                           extra=[f"scst.rewards={weights}"])
        steps["scst"] = scst.steps
        train_s = time.monotonic() - tic
        evals["cap"] = evaluate_task(scst.final_dir, "cap", data_root, run_dir / "eval" / "cap", settings.eval_limit)
    record = {
        "variant": variant.name, "factor": variant.factor, "seed": seed, "definition": definition(variant), "steps": steps,
        "train_seconds": train_s, "seconds": time.monotonic() - tic, "scores": _scores(evals),
    }
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    return record


def read_record(path: Path, name: str, seed: int, expected: dict[str, Any] | None = None) -> dict[str, Any]:
    """A finished run's ``scores.json`` (of variant ``name``, seed ``seed``, defined as ``expected``).

    A record written before runs kept their variant's :func:`definition` is taken as it is.

    Raises:
        ValueError: naming the file and what is wrong (not JSON, another variant's or seed's, no scores,
            made by another definition of the variant: the grid or the recipe's reward weights changed since).
    """
    hint = "delete it to rerun this variant"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a finished run's scores ({err}); {hint}") from err
    if not isinstance(record, dict) or not isinstance(record.get("scores"), dict):
        raise ValueError(f"{path}: not a finished run's scores (no 'scores' object); {hint}")
    if record.get("variant") != name or record.get("seed") != seed:
        raise ValueError(f"{path}: the scores of variant {record.get('variant')!r} seed {record.get('seed')!r}, "
                         f"not of {name!r} seed {seed}; {hint}")
    made = record.get("definition")
    if expected is not None and made is not None and made != expected:
        changed = ", ".join(f"{k}: run {made.get(k)!r}, grid now {expected[k]!r}" for k in expected if made.get(k) != expected[k])
        raise ValueError(f"{path}: this run of {name!r} was made with another definition of the variant ({changed}); "
                         f"{hint} with the grid as it is now, or continue it with the code it was made with")
    return record


def finished_runs(out: Path, variants: Sequence[Variant]) -> list[dict[str, Any]]:
    """The records of every finished run in ``out`` of these variants (any seed), in grid order, then by seed."""
    found = []
    for v in variants:
        folder = out / "runs" / slug(v.name)
        seeds = sorted(int(p.name.removeprefix("seed-")) for p in folder.glob("seed-*")
                       if p.name.removeprefix("seed-").isdigit() and (p / "scores.json").is_file())
        found += [read_record(folder / f"seed-{s}" / "scores.json", v.name, s, definition(v)) for s in seeds]
    return found


# What a finished run's scores depend on besides its variant and seed: an ablation continued with other
# values would put runs of two budgets in one table. Seeds and --only may change (other run folders).
BUDGET_SETTINGS = ("quick", "scenes", "size", "align_steps", "sft_steps", "scst_steps", "box_fit_steps", "eval_limit")


ABLATION_ENTRIES = frozenset({"ablation.json", "ablation.md", "ablation.png", "data", "runs"})


def check_continues(out: Path, settings: dict[str, Any]) -> None:
    """Refuse an ``out`` that is not a folder, holds files of anything but an ablation, or holds an ablation
    run with another budget."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    path = out / "ablation.json"
    if not path.is_file():
        # an ablation stopped before its first run finished has only data/ and runs/; anything else is not one
        foreign = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.name not in ABLATION_ENTRIES) if out.is_dir() else []
        if foreign:
            raise ValueError(f"--out {out} is not empty and holds no ablation (found {foreign[:5]}); choose a new or empty folder")
        return
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))["settings"]
        if not isinstance(earlier, dict):
            raise TypeError(f"settings is a {type(earlier).__name__}, not an object")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not the record `aerith ablate` writes ({type(err).__name__}: {err}); choose another --out") from err
    changed = [f"{k} {earlier[k]!r} there, {settings[k]!r} now" for k in BUDGET_SETTINGS if k in earlier and earlier[k] != settings[k]]
    if changed:
        raise ValueError(
            f"{out} holds an ablation with another budget ({'; '.join(changed)}): its finished runs would share a "
            "table with runs of this one. Continue it with the same settings, or choose another --out"
        )


def run_ablation(settings: AblationSettings, echo: Callable[[str], None] = print) -> AblationResult:
    """Run every variant for every seed (skipping finished runs), then write the table and the plot."""
    from aerith.ablate.table import write_outputs
    from aerith.bench import machine_description
    from aerith.data.synthrs import generate
    from aerith.quickstart.pipeline import quiet_transformers
    from aerith.quickstart.stages import load_model_recipe

    grid = whole_grid(settings)
    variants = grid_for(settings, grid)
    size = load_model_recipe().image_size
    recorded = {**asdict(settings), "out": str(settings.out), "size": size}
    check_continues(settings.out, recorded)
    settings.out.mkdir(parents=True, exist_ok=True)
    info = {"settings": recorded, "machine": machine_description(), "date": date.today().isoformat()}
    # the runs of earlier invocations (other seeds, other --only variants) stay in the record and the table
    done = {(r["variant"], r["seed"]): r for r in finished_runs(settings.out, grid)}
    order = {v.name: i for i, v in enumerate(grid)}

    def everything() -> tuple[list[Variant], list[dict[str, Any]]]:
        runs = sorted(done.values(), key=lambda r: (order[r["variant"]], r["seed"]))
        return [v for v in grid if any(r["variant"] == v.name for r in runs)], runs

    for seed in settings.seeds:
        data_root = settings.out / "data" / f"seed-{seed}"
        if not (data_root / "scene_graphs.json").is_file():
            generate(data_root, n=settings.scenes, size=size, seed=seed, overwrite=data_root.exists())
        for variant in variants:
            tic = time.monotonic()
            with quiet_transformers():  # a progress bar per save and load, hundreds per ablation, hid the results
                record = run_variant(variant, seed, settings, data_root, echo)
            done[(variant.name, seed)] = record
            scores = ", ".join(f"{k} {'n/a' if v is None else f'{100 * v:.1f}'}" for k, v in record["scores"].items())
            echo(f"[{variant.name} | seed {seed}] {scores} ({time.monotonic() - tic:.0f} s)")
            shown, runs = everything()
            atomic_write_text(settings.out / "ablation.json",
                              json.dumps({**info, "variants": [v.name for v in shown], "runs": runs}, indent=2) + "\n")
    shown, runs = everything()
    table, plot = write_outputs(settings.out, {**info, "variants": [v.name for v in shown]}, runs, shown)
    return AblationResult(settings.out, table, plot, runs)


def parse_seeds(text: str) -> Sequence[int]:
    """``"0,1,2"`` -> ``[0, 1, 2]``."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError as err:
        raise ValueError(f"--seeds takes comma-separated integers such as 0,1,2, got {text!r}") from err
