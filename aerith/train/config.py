"""Training recipes: dataclasses validated in ``__post_init__``, read from YAML, overridden from the CLI.

A recipe is one YAML file (``configs/sft-aerith-tiny.yaml``); any field can be
overridden with a dotted assignment such as ``optim.lr=1e-4`` or
``data.train.0.root=/data/synthrs`` (values are parsed as YAML). The resolved
recipe is written to the run folder as ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

STAGES = ("align", "sft", "scst")
SCHEDULES = ("cosine", "linear", "constant")
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")


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
        if not self.name or not str(self.root):
            raise ValueError(f"a data source needs a name and a root, got name={self.name!r} root={self.root!r}")
        if self.weight <= 0:
            raise ValueError(f"data source {self.name}: weight must be > 0, got {self.weight}")
        self.root = str(self.root)


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
        self.train = [s if isinstance(s, DataSource) else DataSource(**s) for s in self.train]
        self.val = [s if isinstance(s, DataSource) else DataSource(**s) for s in self.val]
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
        if self.lora is not None:
            from aerith.models.lora import LoraSettings

            self.lora = LoraSettings(**self.lora).to_dict()
        if self.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"model.dtype must be auto, float32, bfloat16 or float16, got {self.dtype!r}")


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
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        self.lr, self.weight_decay, self.eps = float(self.lr), float(self.weight_decay), float(self.eps)
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_accum < 1 or len(self.betas) != 2:
            raise ValueError(
                f"optim: need lr > 0, weight_decay >= 0, grad_accum >= 1, two betas; got lr={self.lr}, "
                f"weight_decay={self.weight_decay}, grad_accum={self.grad_accum}, betas={self.betas}"
            )
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
        self.min_lr_ratio = float(self.min_lr_ratio)
        if self.max_minutes is not None:
            self.max_minutes = float(self.max_minutes)
            if not self.max_minutes > 0:
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
        rewards: weights of ``cider`` (CIDEr-D), ``sg_f1`` (scene-graph F1) and the
            ``hallucination`` / ``missing`` object penalties (:class:`aerith.rl.rewards.RewardWeights`).
        parser: scene-graph parser of the reward: ``rule`` (built in, offline) or ``factual``
            (the FACTUAL model of the optional ``factualscenegraph`` package; see :mod:`aerith.rl.factual`).
    """

    k: int = 5
    temperature: float = 1.0
    max_new_tokens: int = 32
    baseline: str = "loo"
    block_trigrams: bool = True
    bad_endings: bool = True
    rewards: dict[str, float] = field(
        default_factory=lambda: {"cider": 1.0, "sg_f1": 0.5, "hallucination": 0.5, "missing": 0.0}
    )
    parser: str = "rule"

    def __post_init__(self) -> None:
        from aerith.rl.rewards import RewardWeights

        self.temperature = float(self.temperature)
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
        weights = {"cider": 1.0, "sg_f1": 0.5, "hallucination": 0.5, "missing": 0.0, **dict(self.rewards or {})}
        try:
            RewardWeights(**{k: float(v) for k, v in weights.items()})
        except TypeError as err:
            raise ValueError(f"scst.rewards: {err}; valid terms: cider, sg_f1, hallucination, missing") from err
        except ValueError as err:
            raise ValueError(f"scst.rewards: {err}") from err
        self.rewards = {k: float(v) for k, v in weights.items()}


@dataclass
class TrainConfig:
    """A whole recipe.

    Attributes:
        stage: ``align`` (DINOv3 -> CLIP head, label-free), ``sft`` (instruction tuning) or
            ``scst`` (self-critical RL on captions, settings in ``scst``).
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
        for name, cls in _SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _build(cls, value, name))
        if self.stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, got {self.stage!r}")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}")
        if not self.data.train:
            raise ValueError("data.train is empty: name at least one data source")
        if not self.trainable:
            raise ValueError("trainable is empty: name the parameter groups to train")
        self.trainable = list(self.trainable)
        if self.find_unused_parameters is None:
            towers = {"towers", "clip_tower", "dino_tower", "vision_model"}
            self.find_unused_parameters = bool(towers & set(self.trainable))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["optim"]["betas"] = list(self.optim.betas)
        return out


_SECTIONS = {
    "model": ModelConfig,
    "data": DataConfig,
    "optim": OptimConfig,
    "schedule": ScheduleConfig,
    "checkpoint": CheckpointConfig,
    "logging": LoggingConfig,
    "scst": SCSTConfig,
}


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in {where}; valid fields: {sorted(known)}")
    return cls(**values)


def apply_override(tree: dict[str, Any], assignment: str) -> None:
    """Apply ``a.b.c=value`` to a nested dict/list tree in place (value parsed as YAML)."""
    if "=" not in assignment:
        raise ValueError(f"override {assignment!r} is not of the form key.path=value")
    key, raw = assignment.split("=", 1)
    parts = key.strip().split(".")
    node: Any = tree
    for depth, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: depth + 1]))
    last = parts[-1]
    value = _parse_value(raw)
    if isinstance(node, list):
        node[_index(node, last, key)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ValueError(f"override {assignment!r}: {'.'.join(parts[:-1])} is not a section")


def _parse_value(raw: str) -> Any:
    """YAML, except that ``1e-4`` is a float (YAML 1.1 reads it as a string)."""
    value = yaml.safe_load(raw) if raw.strip() else None
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _index(node: list, part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ValueError(f"override {where}: {part!r} is not an index of a list of {len(node)}")
    return int(part)


def _child(node: Any, part: str, where: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, where)]
    if not isinstance(node, dict):
        raise ValueError(f"override {where}: not a section")
    if node.get(part) is None:
        node[part] = {}
    return node[part]


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Read a recipe (YAML) and apply dotted overrides; unknown keys raise ``ValueError`` naming them."""
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"recipe {path} not found")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: a recipe is a YAML mapping, got {type(loaded).__name__}")
        tree = loaded
    for assignment in overrides or []:
        apply_override(tree, assignment)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(tree) - known)
    if unknown:
        raise ValueError(f"unknown top-level field(s) {unknown}; valid fields: {sorted(known)}")
    try:
        return TrainConfig(**tree)
    except TypeError as err:
        raise ValueError(f"{path or 'recipe'}: {err}") from err


def dump_config(config: TrainConfig) -> str:
    """The resolved recipe as YAML (what goes into the run folder)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
