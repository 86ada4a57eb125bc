"""Training recipes: dataclasses validated in ``__post_init__``, read from YAML, overridden from the CLI.

A recipe is one YAML file (``configs/sft-aerith-tiny.yaml``); any field can be
overridden with a dotted assignment such as ``optim.lr=1e-4`` or
``data.train.0.root=/data/synthrs`` (values are parsed as YAML). The resolved
recipe is written to the run folder as ``config.yaml``.

Every field is checked against its annotation before anything is built: a value
of the wrong type is a :class:`RecipeError` that names the key, the type wanted and
the ``--set`` it came from; a file that is not UTF-8 or not YAML names the file and
line. Numbers written ``1e-4`` (a string in YAML 1.1) are read as numbers.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aerith.rl.rewards import check_weights, default_weights

_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when installed: the same rules, ~10x faster
SCHEDULES = ("cosine", "linear", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
MAX_RECIPE_BYTES = 1_000_000
MAX_VALUES, MAX_DEPTH = 10_000, 32  # a recipe holds about a hundred values


class RecipeError(ValueError):
    """A recipe cannot be read or holds a wrong value; the message names the file (and line) or the key."""


class FieldError(RecipeError):
    """A wrong value at ``path`` (dotted key); outer sections prefix their own key as the error rises."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path, self.message = path, message

    def under(self, where: str) -> FieldError:
        return FieldError(f"{where}.{self.path}" if where and self.path else where or self.path, self.message)


# -- typed fields -------------------------------------------------------------------------------------
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _describe(hint: Any) -> str:
    """What a value of type ``hint`` looks like, for error messages."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_describe(a) for a in inner) + (" or null" if type(None) in args else "")
    if dataclasses.is_dataclass(hint):
        return "a section of key: value fields"
    if origin is list:
        if args and dataclasses.is_dataclass(args[0]):
            return "a list of sections (key: value fields, one per item)"
        plural = {int: "integers", float: "numbers", bool: "true/false values", str: "strings"}
        return f"a list of {plural.get(args[0], 'values')}" if args else "a list"
    if origin is tuple:
        return f"a list of {len(args)} numbers" if all(a is float for a in args) else f"a list of {len(args)} values"
    if origin is dict:
        return "a mapping of key: value"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(hint, str(hint))


def _wrong(key: str, hint: Any, value: Any) -> FieldError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return FieldError(key, f"expected {_describe(hint)}, got {shown} ({type(value).__name__})")


def _number(value: Any) -> float | None:
    """A finite number from an int, float or numeric string (YAML 1.1 reads ``1e-4`` as a string); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    if isinstance(value, int | float) and math.isfinite(value):
        return value
    return None


def coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as the annotation ``hint`` wants it, or :class:`FieldError` naming ``key`` and the type wanted."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        try:
            return coerce(value, inner, key)
        except FieldError as err:
            raise (_wrong(key, hint, value) if err.path == key else err) from None
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if value is None or isinstance(value, dict):
            return build(hint, value or {}, key)
        raise _wrong(key, hint, value)
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise _wrong(key, hint, value)
    if hint is int:
        number = _number(value)
        if number is None or number != int(number):
            raise _wrong(key, hint, value)
        return int(number)
    if hint is float:
        number = _number(value)
        if number is None:
            raise _wrong(key, hint, value)
        return float(number)
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | os.PathLike) and not isinstance(value, bool):
            return str(value) if not isinstance(value, os.PathLike) else os.fspath(value)
        raise _wrong(key, hint, value)
    if origin is list:
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            raise _wrong(key, hint, value)
        return [coerce(v, args[0], f"{key}.{i}") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, list | tuple) or len(value) != len(args):
            raise _wrong(key, hint, value)
        return tuple(coerce(v, a, f"{key}.{i}") for i, (v, a) in enumerate(zip(value, args, strict=True)))
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _wrong(key, hint, value)
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise FieldError(key, f"keys must be strings, got {bad[0]!r}")
        return {k: coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    raise TypeError(f"{key}: unsupported annotation {hint!r}")  # a programming error, not a recipe's


def build(cls: type, values: dict[str, Any], where: str) -> Any:
    """``cls(**values)`` with unknown, missing and mistyped fields reported as :class:`FieldError` under ``where``."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in values if k not in fields)
    if unknown:
        what = "unknown field(s)" if where else "unknown top-level field(s)"
        raise FieldError(where, f"{what} {unknown}; valid fields: {sorted(fields)}")
    required = [n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in values]
    if missing:
        raise FieldError(where, f"missing field(s) {missing}")
    hints = typing.get_type_hints(cls)
    try:
        return cls(**{k: coerce(v, hints[k], k) for k, v in values.items()})
    except FieldError as err:
        raise err.under(where) from None


def _typed(obj: Any) -> None:
    """Coerce every field of a dataclass instance to its annotation (for direct construction)."""
    hints = typing.get_type_hints(type(obj))
    for f in dataclasses.fields(obj):
        setattr(obj, f.name, coerce(getattr(obj, f.name), hints[f.name], f.name))


# -- the sections ---------------------------------------------------------------------------------------
@dataclass
class DataSource:
    """One dataset of the mixture.

    Attributes:
        name: a registered dataset (``aerith.data.list_datasets()``).
        root: the folder the dataset was downloaded or generated into.
        split: which split to read.
        weight: how many times each sample is seen per epoch of the mixture (0.5: a seeded half).
        options: keyword arguments for the loader (``task: vg`` for SynthRS, ``on_bad: skip`` ...).
    """

    name: str
    root: str
    split: str = "train"
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _typed(self)
        # FieldErrors, so that a recipe's error names the source's key path (data.val.0.weight)
        if not self.name:
            raise FieldError("name", "is empty: name a registered dataset")
        if not self.root:
            raise FieldError("root", f"is empty: name the folder of data source {self.name}")
        if self.weight <= 0:
            raise FieldError("weight", f"must be > 0, got {self.weight} (data source {self.name})")


@dataclass
class DataConfig:
    """Training and validation sources, batch size and loading.

    Attributes:
        train: the training mixture.
        val: validation sources (may be empty: then no validation runs).
        batch_size: samples per micro-batch on each process.
        max_val_samples: cap on validation samples (the first ones, in dataset order).
        num_workers: DataLoader worker processes per training process.
        max_length: longest token sequence; longer answers are cut (prompts never are).
    """

    train: list[DataSource] = field(default_factory=list)
    val: list[DataSource] = field(default_factory=list)
    batch_size: int = 8
    max_val_samples: int = 256
    num_workers: int = 0
    max_length: int = 512

    def __post_init__(self) -> None:
        _typed(self)
        if self.batch_size < 1 or self.max_val_samples < 0 or self.num_workers < 0 or self.max_length < 8:
            raise ValueError(
                "data: need batch_size >= 1, max_val_samples >= 0, num_workers >= 0, max_length >= 8; got "
                f"{self.batch_size}, {self.max_val_samples}, {self.num_workers}, {self.max_length}"
            )


@dataclass
class ModelConfig:
    """Which model to start from and how to build it.

    Attributes:
        init: a preset name (``aerith-tiny``, ``aerith-7b``, ``instructblip-tiny`` ...) or a saved folder
            (for example the ``checkpoint-final`` of an align run).
        seed: seed of the random parts of a preset.
        lora: LoRA settings (``r``, ``alpha``, ``dropout``, ``target_modules``) added to the language
            model when it has none yet; ``None``: no LoRA.
        load_in_4bit: 4-bit base language model (bitsandbytes, CUDA only).
        gradient_checkpointing: recompute activations in the backward pass to save memory.
        dtype: weights' dtype when loading (``float32``, ``bfloat16``); ``auto``: bf16 on a GPU with it, else fp32.
    """

    init: str = "aerith-tiny"
    seed: int = 0
    lora: dict[str, Any] | None = None
    load_in_4bit: bool = False
    gradient_checkpointing: bool = False
    dtype: str = "float32"

    def __post_init__(self) -> None:
        _typed(self)
        if not self.init:
            raise FieldError("init", "is empty: name a preset or a saved folder")
        if not 0 <= self.seed < 2**32:
            raise FieldError("seed", f"must be in [0, 2**32), got {self.seed}")
        if self.lora is not None:
            from aerith.models.lora import LoraSettings

            try:
                self.lora = build(LoraSettings, self.lora, "lora").to_dict()
            except FieldError:
                raise
            except ValueError as err:  # LoraSettings' own checks name no key: say it is model.lora
                raise FieldError("lora", str(err)) from None
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise FieldError("dtype", f"must be auto, float32, bfloat16 or float16, got {self.dtype!r}")


@dataclass
class OptimConfig:
    """AdamW and gradient handling. The global batch is ``batch_size * processes * grad_accum``."""

    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    grad_accum: int = 1
    grad_clip: float | None = 1.0

    def __post_init__(self) -> None:
        _typed(self)
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_accum < 1 or self.eps <= 0:
            raise ValueError(
                f"optim: need lr > 0, weight_decay >= 0, grad_accum >= 1, eps > 0; got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, grad_accum={self.grad_accum}, eps={self.eps}"
            )
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be two numbers in [0, 1), got {list(self.betas)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"optim.grad_clip must be > 0 or null, got {self.grad_clip}")


@dataclass
class ScheduleConfig:
    """Length of the run and the learning-rate schedule (linear warmup, then cosine/linear/constant).

    Attributes:
        max_minutes: optional wall-clock limit: the run stops after the first optimizer
            step that ends past it (and saves ``checkpoint-final`` as usual), and the
            schedule decays by whichever is further along, steps or time. Meant for fixed
            budgets such as ``aerith quickstart``; a time-limited run depends on the
            machine's speed, so it is not reproducible step for step across machines.
    """

    max_steps: int = 100
    warmup_steps: int = 0
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0
    max_minutes: float | None = None

    def __post_init__(self) -> None:
        _typed(self)
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ValueError(f"schedule.max_minutes must be > 0 (or null for no limit), got {self.max_minutes}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule.schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.max_steps < 1 or not 0 <= self.warmup_steps <= self.max_steps or not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(
                f"schedule: need max_steps >= 1, 0 <= warmup_steps <= max_steps, 0 <= min_lr_ratio <= 1; got "
                f"{self.max_steps}, {self.warmup_steps}, {self.min_lr_ratio}"
            )


@dataclass
class CheckpointConfig:
    """How often to checkpoint (in optimizer steps, 0: only at the end) and how many to keep."""

    every: int = 0
    keep_last: int = 2

    def __post_init__(self) -> None:
        _typed(self)
        if self.every < 0 or self.keep_last < 1:
            raise ValueError(f"checkpoint: need every >= 0 and keep_last >= 1, got {self.every}, {self.keep_last}")


@dataclass
class LoggingConfig:
    """Metrics every ``every`` steps, validation every ``val_every`` steps (0: only at the end)."""

    every: int = 10
    val_every: int = 0
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        _typed(self)
        if self.every < 1 or self.val_every < 0:
            raise ValueError(f"logging: need every >= 1 and val_every >= 0, got {self.every}, {self.val_every}")


@dataclass
class SCSTConfig:
    """Stage 3 (``scst``): self-critical sequence training on captions (read only when ``stage: scst``).

    Attributes:
        k: captions sampled per image (one image encoding shared by all ``k``).
        temperature: sampling temperature.
        max_new_tokens: longest sampled (and validation greedy) caption.
        baseline: ``loo`` (mean reward of the image's other ``k - 1`` samples; needs ``k >= 2``)
            or ``greedy`` (the reward of the image's greedy caption, decoded in the same rollout).
        block_trigrams: no trigram repeated within a sample.
        bad_endings: no end-of-sequence right after "a", "the", "of", "with" ...
        rewards: weight of each term of the reward table :data:`aerith.rl.rewards.REWARDS`
            (``cider``, ``sg_f1``, and the ``hallucination`` / ``missing`` / ``repetition`` /
            ``unseen_trigrams`` penalties); a term left
            out keeps its default weight, and every term is logged whatever its weight.
        parser: scene-graph parser of the reward: ``rule`` (built in, offline) or ``factual``
            (the FACTUAL model of the optional ``factualscenegraph`` package; see :mod:`aerith.rl.factual`).
        kl: weight of a penalty on the KL divergence from the starting model (``model.init``), per
            sampled token (the k3 estimator of GRPO, Shao et al. 2024), keeping the policy near the
            captioner it started from; 0 turns it off. It holds a frozen second copy of the model.
    """

    k: int = 5
    temperature: float = 1.0
    max_new_tokens: int = 32
    baseline: str = "loo"
    block_trigrams: bool = True
    bad_endings: bool = True
    rewards: dict[str, float] = field(default_factory=default_weights)
    parser: str = "rule"
    kl: float = 0.0

    def __post_init__(self) -> None:
        _typed(self)
        if not self.kl >= 0:
            raise ValueError(f"scst.kl must be >= 0, got {self.kl}")
        if self.baseline not in ("loo", "greedy"):
            raise ValueError(f"scst.baseline must be 'loo' or 'greedy', got {self.baseline!r}")
        if self.k < 1 or (self.baseline == "loo" and self.k < 2):
            raise ValueError(f"scst.k must be >= 2 with the leave-one-out baseline (>= 1 with greedy), got {self.k}")
        if self.temperature <= 0 or self.max_new_tokens < 1:
            raise ValueError(
                f"scst: need temperature > 0 and max_new_tokens >= 1, got {self.temperature}, {self.max_new_tokens}"
            )
        if self.parser not in ("rule", "factual"):
            raise ValueError(f"scst.parser must be 'rule' or 'factual', got {self.parser!r}")
        if self.parser == "factual" and importlib.util.find_spec("factual_scene_graph") is None:
            raise FieldError(  # here, before any model loads or file is written
                "parser", "'factual' needs the optional FACTUAL parser, which is not installed: "
                "pip install factualscenegraph (the default parser 'rule' needs nothing)"
            )
        try:
            self.rewards = check_weights(self.rewards)
        except ValueError as err:
            raise FieldError("rewards", str(err)) from None


@dataclass
class TrainConfig:
    """A whole recipe.

    Attributes:
        stage: a registered stage (:data:`aerith.train.stages.STAGES`): ``align`` (DINOv3 -> CLIP
            head, label-free), ``sft`` (instruction tuning) or ``scst`` (self-critical RL on captions,
            settings in ``scst``). Checked against the registry when the run is built.
        out_dir: the run folder.
        trainable: named parameter groups that train (see ``aerith.train.backbones``);
            everything else is frozen.
        seed: seeds the data order and the RNGs (each process adds its rank).
        mixed_precision: ``auto`` (bf16 where the GPU has it, else none), ``no``, ``bf16``, ``fp16``.
        find_unused_parameters: DDP's flag; ``None``: on when a whole vision tower trains (its last
            layers may feed no feature level and get no gradient), off otherwise.
    """

    stage: str = "sft"
    out_dir: str = "runs/sft"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    scst: SCSTConfig = field(default_factory=SCSTConfig)
    trainable: list[str] = field(default_factory=lambda: ["pooler", "projector", "lora"])
    seed: int = 0
    mixed_precision: str = "auto"
    find_unused_parameters: bool | None = None

    def __post_init__(self) -> None:
        _typed(self)
        if not self.stage:
            raise ValueError("stage is empty: name the stage (align, sft, scst)")
        if not self.out_dir:
            raise ValueError("out_dir is empty: name the run folder")
        if not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32), got {self.seed}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if not self.data.train:
            raise ValueError("data.train is empty: name at least one data source")
        if not self.trainable:
            raise ValueError("trainable is empty: name the parameter groups to train")
        if self.find_unused_parameters is None:
            towers = {"towers", "clip_tower", "dino_tower", "vision_model"}
            self.find_unused_parameters = bool(towers & set(self.trainable))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["optim"]["betas"] = list(self.optim.betas)
        return out


# -- reading a recipe -------------------------------------------------------------------------------------
def read_recipe(path: str | Path) -> dict[str, Any]:
    """A recipe file as a dict, or an error naming the file (and the line, for encoding and YAML errors)."""
    return _parse_recipe(_recipe_text(path), path)


def _recipe_text(path: str | Path) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"recipe {path} not found")
    if not path.is_file():
        raise RecipeError(f"recipe {path} is not a file")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise RecipeError(f"recipe {path} cannot be read: {err.strerror or err}") from None
    if len(data) > MAX_RECIPE_BYTES:
        raise RecipeError(f"recipe {path} is {len(data):,} bytes; a recipe is a small YAML file (at most {MAX_RECIPE_BYTES:,})")
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise RecipeError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{data[err.start]:02x} at column {column}); save the recipe as UTF-8"
        ) from None


def _parse_recipe(text: str, path: str | Path) -> dict[str, Any]:
    try:
        loaded = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        raise RecipeError(f"{path}{_yaml_where(err, text)}: not valid YAML ({_yaml_problem(err)})") from None
    except RecursionError:
        raise RecipeError(f"{path}: nested too deeply to be a recipe") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise RecipeError(f"{path}: a recipe is a YAML mapping of key: value lines, got {type(loaded).__name__}")
    return loaded


def _key_line(text: str, key: str) -> int | None:
    """The line of ``key`` (dotted) in the recipe text, or of the nearest section above it that is there."""
    lines: dict[str, int] = {}
    stack, seen = [(yaml.compose(text, Loader=_SAFE_LOADER), "")], set()
    while stack:
        node, prefix = stack.pop()
        if node is None or id(node) in seen:  # an alias is walked once
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            children = [(f"{prefix}.{k.value}" if prefix else str(k.value), k, v) for k, v in node.value]
        elif isinstance(node, yaml.SequenceNode):
            children = [(f"{prefix}.{i}", v, v) for i, v in enumerate(node.value)]
        else:
            continue
        for name, mark_node, child in children:
            lines.setdefault(name, mark_node.start_mark.line + 1)
            stack.append((child, name))
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in lines:
            return lines[".".join(parts[:n])]
    return None


def _yaml_where(err: yaml.YAMLError, text: str) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is not None:
        return f", line {mark.line + 1}, column {mark.column + 1}"
    position = getattr(err, "position", None)  # ReaderError: a character YAML does not allow
    if isinstance(position, int):
        return f", line {text.count(chr(10), 0, position) + 1}"
    return ""


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None)
    if problem:
        context = getattr(err, "context", None)
        return f"{context}, {problem}" if context else str(problem)
    reason = getattr(err, "reason", None)
    return str(reason) if reason else type(err).__name__


def _check_size(tree: Any, where: str) -> None:
    """Refuse trees too large or too deep for a recipe (e.g. YAML aliases that expand a billion-fold)."""
    stack, seen = [(tree, 0)], 0
    while stack:
        node, depth = stack.pop()
        seen += 1
        if seen > MAX_VALUES or depth > MAX_DEPTH:
            raise RecipeError(f"{where}: more than {MAX_VALUES:,} values or nested deeper than {MAX_DEPTH}; not a recipe")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def _parse_value(raw: str, origin: str) -> Any:
    """An override's value as YAML (``1e-4`` stays a string here; numeric fields read it as a number)."""
    if not raw.strip():
        return None
    try:
        return yaml.load(raw, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as err:
        raise RecipeError(f"{origin}: the value is not valid YAML ({_yaml_problem(err)})") from None
    except RecursionError:
        raise RecipeError(f"{origin}: the value is nested too deeply") from None


def apply_override(tree: dict[str, Any], assignment: str) -> str:
    """Apply ``a.b.c=value`` to a nested dict/list tree in place (value parsed as YAML); returns the key."""
    origin = f"--set {assignment}"
    if "=" not in assignment:
        raise RecipeError(f"{origin}: not of the form key.path=value")
    key, raw = assignment.split("=", 1)
    set_value(tree, key.strip(), _parse_value(raw, origin), origin)
    return key.strip()


def set_value(tree: dict[str, Any], key: str, value: Any, origin: str) -> None:
    """Set the dotted ``key`` of ``tree`` to ``value`` (sections are created; list items addressed by index)."""
    parts = key.split(".")
    if not all(parts):
        raise RecipeError(f"{origin}: {key!r} is not a key path such as optim.lr")
    node: Any = tree
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]), origin)
    last = parts[-1]
    if isinstance(node, list):
        node[_index(node, last, key, origin)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise RecipeError(f"{origin}: {'.'.join(parts[:-1])} is not a section")


def _index(node: list, part: str, where: str, origin: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise RecipeError(f"{origin}: {where}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def _child(node: Any, part: str, where: str, origin: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where, origin)]
    if not isinstance(node, dict):
        raise RecipeError(f"{origin}: {where} is not a section")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    *,
    values: dict[str, Any] | None = None,
    value_origins: dict[str, str] | None = None,
) -> TrainConfig:
    """Read a recipe (YAML), apply dotted ``--set`` overrides, then ``values`` (already typed: the CLI's options).

    ``value_origins`` names where each of ``values`` came from (``{"model.init": "--init ''"}``), so that
    an error in it names the option, not the recipe's line it replaced.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        RecipeError: anything else wrong, named by file and line or by key (and the ``--set`` or option it came from).
    """
    where = str(path) if path is not None else "recipe"
    text = _recipe_text(path) if path is not None else ""
    tree = _parse_recipe(text, where) if path is not None else {}
    origins: dict[str, str] = {}
    for assignment in overrides or []:
        key = apply_override(tree, assignment)
        origins.pop(key, None)  # the later of two overrides of one key is the one that counts, and is named
        origins[key] = f"--set {assignment}"
    for key, value in (values or {}).items():
        origin = (value_origins or {}).get(key, f"option {key}")
        set_value(tree, key, value, origin)
        origins.pop(key, None)
        origins[key] = origin
    _check_size(tree, where)
    try:
        return build(TrainConfig, tree, "")
    except FieldError as err:
        origin = _origin(err.path, origins)
        line = _key_line(text, err.path) if text and err.path and not origin else None
        raise RecipeError(f"{where}{f', line {line}' if line else ''}: {err}{origin}") from None
    except RecipeError:
        raise
    except (ValueError, TypeError) as err:
        # a section's own check ("optim: need lr > 0 ...", "out_dir is empty ..."): the key it starts with
        # tells which overrides or options may have set the value
        key = re.match(r"[A-Za-z_][\w.]*", str(err))
        raise RecipeError(f"{where}: {err}{_origin(key.group(0) if key else '', origins)}") from None


def _origin(path: str, origins: dict[str, str]) -> str:
    """`` (from --set ...)`` naming each override or option that set ``path``, a field below it, or the section holding it."""
    found = [
        origin for key, origin in origins.items()
        if path and (key == path or key.startswith(path + ".") or path.startswith(key + "."))
    ]
    return f" (from {', '.join(found)})" if found else ""


def dump_config(config: TrainConfig) -> str:
    """The resolved recipe as YAML (what goes into the run folder)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
