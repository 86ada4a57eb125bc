"""The quickstart's building blocks, shared with ``aerith ablate``: the starting model, a training stage, an evaluation.

The recipes live in ``aerith/quickstart/recipes/``: ``model.yaml`` (which random
model to start from: a preset, config overrides, the coordinate-token start) and
one training recipe per stage (``align``, ``sft``, ``scst``). A caller sets the
run's paths, seeds and length (a time limit or a step count) and may lay its
own overrides on top (the ablation's variants do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

RECIPES = Path(__file__).resolve().parent / "recipes"
MAX_NEW_TOKENS = {"cls": 12, "vqa": 8, "vg": 16, "cap": 40}


@dataclass
class ModelRecipe:
    """The random model a run starts from.

    Attributes:
        preset: a random-weight preset (``aerith-tiny``).
        overrides: dotted :class:`~aerith.models.AerithConfig` fields to change
            (``connector``, ``clip_config.image_size`` ...), see
            :func:`aerith.models.build.config_with_overrides`.
        coordinate_init: ``fourier`` or ``random`` start of the number tokens.
    """

    preset: str = "aerith-tiny"
    overrides: dict[str, Any] = field(default_factory=dict)
    coordinate_init: str = "fourier"

    def __post_init__(self) -> None:
        from aerith.models.build import COORDINATE_INITS

        from aerith.models.presets import get_preset

        try:
            get_preset(self.preset)
        except KeyError as err:
            raise ValueError(err.args[0]) from None
        self.overrides = dict(self.overrides or {})
        if self.coordinate_init not in COORDINATE_INITS:
            raise ValueError(f"coordinate_init must be one of {COORDINATE_INITS}, got {self.coordinate_init!r}")

    def with_changes(self, overrides: Mapping[str, Any] | None = None, coordinate_init: str | None = None) -> ModelRecipe:
        """A copy with more config overrides (they win) and maybe another coordinate start."""
        return ModelRecipe(self.preset, {**self.overrides, **dict(overrides or {})}, coordinate_init or self.coordinate_init)

    def config(self):
        """The :class:`~aerith.models.AerithConfig` the recipe builds."""
        from aerith.models.build import config_with_overrides
        from aerith.models.presets import get_preset

        return config_with_overrides(get_preset(self.preset).make_config(), self.overrides)

    @property
    def image_size(self) -> int:
        """The CLIP tower's input side in pixels (SynthRS scenes are generated at this size)."""
        return int(self.config().clip_config.image_size)


def _read_settings(path: Path, cls: type, exclude: Sequence[str] = ()) -> Any:
    """``cls`` from a YAML file of its fields, typed as the training recipes are.

    Raises:
        ValueError: naming the file and the field (unknown, mistyped or out of range).
    """
    import dataclasses
    import typing

    from aerith.train.config import coerce

    tree = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(tree, dict):
        raise ValueError(f"{path}: expected key: value fields, got {type(tree).__name__}")
    known = {f.name for f in dataclasses.fields(cls)} - set(exclude)
    unknown = sorted(str(k) for k in tree if k not in known)
    if unknown:
        raise ValueError(f"{path}: unknown field(s) {unknown}; valid fields: {', '.join(sorted(known))}")
    hints = typing.get_type_hints(cls)
    for name, hint in hints.items():  # a YAML list for a tuple of any length
        if typing.get_origin(hint) is tuple and typing.get_args(hint)[1:] == (Ellipsis,):
            hints[name] = list[typing.get_args(hint)[0]]
    try:
        return cls(**{k: coerce(v, hints[k], k) for k, v in tree.items()})
    except ValueError as err:  # the recipe checks' FieldError is one
        raise ValueError(f"{path}: {err}") from None


def load_model_recipe(path: Path = RECIPES / "model.yaml") -> ModelRecipe:
    """Read ``model.yaml``; unknown, mistyped or invalid fields raise ``ValueError`` naming them."""
    recipe = _read_settings(path, ModelRecipe)
    try:
        recipe.config()  # the overrides name real config fields, with values of their types
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: overrides: {err.args[0] if err.args else err}") from None
    return recipe


def load_recipe_rewards() -> dict[str, float]:
    """The SCST reward weights of ``recipes/scst.yaml`` (with the defaults it leaves out)."""
    from aerith.train.config import load_config

    return dict(load_config(RECIPES / "scst.yaml").scst.rewards)


def build_initial_model(out: Path, recipe: ModelRecipe, seed: int) -> Path:
    """Build the recipe's random model from ``seed`` and save it (atomically) to ``out``; returns ``out``."""
    from aerith.infer.vlm import AerithVLM
    from aerith.models.build import build_from_preset

    model, processor = build_from_preset(
        recipe.preset, seed=seed, overrides=recipe.overrides, coordinate_init=recipe.coordinate_init
    )
    AerithVLM(model, processor, name=recipe.preset).save_pretrained(out)
    return out


def train_stage(
    stage: str,
    run_dir: Path,
    init: str | Path,
    data_root: Path,
    seed: int,
    *,
    max_minutes: float | None = None,
    max_steps: int | None = None,
    extra: Sequence[str] = (),
):
    """Run the quickstart recipe of ``stage`` from ``init`` on the SynthRS folder ``data_root``.

    Exactly one of ``max_minutes`` (a wall-clock limit) and ``max_steps`` sets the
    length; ``extra`` are more dotted recipe overrides (they win). Returns the
    :class:`~aerith.train.loop.TrainResult`.
    """
    from aerith.train.commands import run_stage
    from aerith.train.config import load_config

    if (max_minutes is None) == (max_steps is None):
        raise ValueError("give exactly one of max_minutes and max_steps")
    recipe = RECIPES / f"{stage}.yaml"
    if max_minutes is not None:
        length = [f"schedule.max_minutes={max_minutes}"]
    else:  # a short run keeps its warmup within its steps
        warmup = (yaml.safe_load(recipe.read_text()).get("schedule") or {}).get("warmup_steps", 0)
        length = [f"schedule.max_steps={max_steps}", f"schedule.warmup_steps={min(warmup, max_steps)}"]
    overrides = [
        f"out_dir={run_dir}",
        f"model.init={init}",
        f"model.seed={seed}",
        f"seed={seed}",
        *length,
        "logging.progress=false",
        *extra,
    ]
    config = load_config(recipe, overrides)
    for source in [*config.data.train, *config.data.val]:
        source.root = str(data_root)
    return run_stage(config)


def load_box_fit_recipe(path: Path = RECIPES / "box_fit.yaml"):
    """Read ``box_fit.yaml`` into a :class:`~aerith.train.box_fit.BoxFitConfig`; bad fields raise ``ValueError`` naming them."""
    from aerith.train.box_fit import BoxFitConfig

    return _read_settings(path, BoxFitConfig, exclude=("max_seconds", "seed"))


def fit_box_head_stage(
    run_dir: Path, init: str | Path, data_root: Path, seed: int, *, max_minutes: float | None = None, steps: int | None = None
) -> Path:
    """Fit the box head of ``init`` on the SynthRS grounding training split (``recipes/box_fit.yaml``,
    ``steps`` instead of its own if given); returns the fitted model's folder (``run_dir/checkpoint-final``)."""
    from dataclasses import replace

    from aerith.train.box_fit import run_box_fit

    config = replace(load_box_fit_recipe(), seed=seed)
    if steps is not None:
        config = replace(config, steps=steps)
    run_box_fit(
        init, "synthrs", data_root, run_dir, config, options={"task": "vg"}, val_split="val",
        max_seconds=None if max_minutes is None else 60.0 * max_minutes,
    )
    return Path(run_dir) / "checkpoint-final"


def evaluate_task(model: Any, task: str, data_root: Path, out: Path, limit: int | None = None) -> dict[str, Any]:
    """Evaluate a model (a saved folder, or a loaded VLM) on the SynthRS test split of ``task``; returns the results."""
    from aerith.eval.runner import evaluate
    from aerith.infer.load import load_vlm

    vlm = load_vlm(model) if isinstance(model, (str, Path)) else model
    return evaluate(
        vlm, f"synthrs-{task}", data_root, out, batch_size=32, progress=False, limit=limit,
        generate_kwargs={"max_new_tokens": MAX_NEW_TOKENS[task]},
    )


def read_predictions(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The per-sample records an evaluation wrote (``predictions.jsonl`` in its run folder)."""
    import json

    path = Path(result["run_dir"]) / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
