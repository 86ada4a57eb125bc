"""The one training loop every stage runs, on Hugging Face accelerate.

One CPU process, or ``accelerate launch`` for DDP / FSDP / DeepSpeed. :func:`train`
reads top-down: :func:`setup` (checks, data, model, the stage's objective, optimizer,
resumed state), :func:`fit` (the optimizer steps, logging, validation, checkpoints) and
:func:`save_checkpoint`. What differs between stages comes from the recipe's
:class:`aerith.train.stage.Stage` (registered in :mod:`aerith.train.stages`); the loop
never asks which stage it runs.

Per optimizer step: ``grad_accum`` micro-batches per process, each prepared by the
stage's objective (SCST: its rollout), each loss normalised by the objective's count
(answer tokens, patches, sampled tokens) over the whole global batch, so one process
and N processes give the same update for the same global batch; gradient clipping;
AdamW with linear warmup then cosine/linear/constant decay. Checkpoints are written
atomically (:func:`aerith.atomic.atomic_dir`): the model and processor in the
``save_pretrained`` format plus ``accelerate_state/`` (optimizer, scheduler and every
process's RNG) and ``trainer_state.json``; ``resume=True`` continues from the newest one
with the same data order, or refuses (:mod:`aerith.train.run_folder`). A non-finite
loss or gradient norm stops the run before the step is applied, with a checkpoint of the
last finite weights.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from aerith.atomic import atomic_dir, atomic_write_text
from aerith.runs import CHECKPOINT_PREFIX, FINAL, STATE_FILE, checkpoints
from aerith.train.backbones import Backbone, load_backbone, resolve_dtype
from aerith.train.config import TrainConfig, dump_config
from aerith.train.data import InstructionFn, MicroBatches, Mixture, check_sources, default_instruction_fn, load_sources
from aerith.train.run_folder import ACCELERATE_STATE, CONFIG_FILE, ResumeError, RunStart, check_rng_restored, open_run
from aerith.train.stage import Stage, StageObjective, StageSetup
from aerith.train.stages import get_stage
from aerith.train.tracking import MetricsLog, TrainClock, Window

__all__ = [
    "CHECKPOINT_PREFIX", "FINAL", "STATE_FILE", "NonFiniteLossError", "Run", "TrainResult",
    "checkpoints", "fit", "lr_lambda", "save_checkpoint", "setup", "train",
]  # fmt: skip


class NonFiniteLossError(RuntimeError):
    """The loss or its gradient's norm became NaN or infinite; the step was not applied, and a checkpoint
    of the weights before it (the last finite ones) was written."""


@dataclass
class TrainResult:
    """What a run did: its folder, final checkpoint, steps, and the logged losses."""

    run_dir: Path
    final_dir: Path
    steps: int
    train_loss: list[tuple[int, float]] = field(default_factory=list)
    val_loss: list[tuple[int, float]] = field(default_factory=list)
    val_metrics: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    samples_per_s: float = 0.0
    main_process: bool = True  # False on the other processes of `accelerate launch` (they report nothing)


# -- helpers ------------------------------------------------------------------------------------------
def resolve_mixed_precision(choice: str) -> str:
    """``auto``: bf16 on a CUDA GPU that has it, else none (CPU autocast is not worth it here)."""
    if choice != "auto":
        return choice
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def lr_lambda(step: int, warmup: int, max_steps: int, schedule: str, min_ratio: float, time_progress: float = 0.0) -> float:
    """Multiplier of the base learning rate at optimizer step ``step`` (0-based).

    ``time_progress``: the fraction of a wall-clock limit used so far; the decay follows
    whichever of it and the step fraction is further along.
    """
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, max((step - warmup) / max(1, max_steps - warmup), time_progress))
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if schedule == "cosine" else 1 - progress
    return min_ratio + (1 - min_ratio) * decay


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# Float tensors that stay float32 whatever the model's dtype: box targets in [0, 1] (bf16 would move them by
# up to two units of the 0-1000 grid).
FLOAT32_KEYS = frozenset({"box_targets"})


def _to_device(batch: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Tensors to the device (floats to the model's dtype, but :data:`FLOAT32_KEYS`); other values (SCST's references) pass through."""
    return {
        k: v.to(device, dtype=dtype if v.is_floating_point() and k not in FLOAT32_KEYS else None) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


# -- the loop: setup, fit, save -----------------------------------------------------------------------
def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    instruction_fn: InstructionFn | None = None,
    objective_hook: Callable[[nn.Module], nn.Module] | None = None,
) -> TrainResult:
    """Run ``config.stage`` to ``schedule.max_steps`` optimizer steps (or ``schedule.max_minutes``).

    Args:
        config: the resolved recipe.
        resume: continue from the newest checkpoint of ``config.out_dir``.
        instruction_fn: Sample -> Instruction for stages whose items are instructions, called as
            ``fn(sample, classes=, seed=, index=, names=)`` (default ``aerith.data.instructions.to_instruction``).
        objective_hook: optional ``(objective) -> module`` wrapper of the loss (tests use it to inject faults).
    Raises:
        FileExistsError: the run folder already has checkpoints and ``resume`` is false.
        ResumeError: ``resume`` is true but the run cannot continue exactly (the message says why).
        NonFiniteLossError: the loss or the gradient norm became NaN/inf; the message names the step and the checkpoint.
    """
    run = setup(config, resume=resume, instruction_fn=instruction_fn, objective_hook=objective_hook)
    log = MetricsLog(run.run_dir, config, run.start.step, run.main, resumed=run.start.checkpoint is not None)
    try:
        result = fit(run, log)
        save_checkpoint(run, FINAL, result.steps, with_state=False)
    finally:
        log.close()
        run.trained = None  # type: ignore[assignment]  # the run is over; nothing reads it after this
        _end_training(run.accelerator)
    return result


def _end_training(accelerator: Any) -> None:
    """Free the DDP/FSDP wrapper, then end training (and destroy the process group), whether the run
    finished or failed; the caller has dropped its own references to the wrapper.

    A DDP Reducer that outlives ``destroy_process_group`` holds the last reference to the gloo group,
    and freeing it then joins gloo's worker threads with the GIL held; a worker still freeing the
    tensors of the last broadcast waits for that GIL, and the process never exits (3 of 60 two-process
    CPU runs on a loaded machine). Freed first, the group goes in ``destroy_process_group``, whose
    binding lets go of the GIL.
    """
    accelerator.free_memory()
    gc.collect()
    accelerator.end_training()


@dataclass
class Run:
    """A run ready to fit, as :func:`setup` builds it.

    Attributes:
        objective: the stage's objective (prepares batches, counts, validates).
        trained: the module the loss is computed through (the objective, possibly wrapped by a
            hook), as ``accelerator.prepare`` returned it (DDP/FSDP-wrapped when distributed).
        val_batches: this process's share of the validation set, collated; every process holds as many
            batches (see :func:`validation_shard`), of which the first ``val_counted`` count.
        provenance: what the starting weights were (saved into every checkpoint's config).
    """

    config: TrainConfig
    stage: Stage
    accelerator: Any
    start: RunStart
    backbone: Backbone
    n_trainable: int
    provenance: str
    objective: StageObjective
    trained: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    loader: DataLoader
    val_batches: list[dict[str, Any]]
    clock: TrainClock
    val_counted: int = 0

    @property
    def run_dir(self) -> Path:
        return self.start.run_dir

    @property
    def main(self) -> bool:
        return self.accelerator.is_main_process

    @property
    def world(self) -> int:
        return self.accelerator.num_processes

    @property
    def global_batch(self) -> int:
        return self.config.data.batch_size * self.config.optim.grad_accum * self.world

    @property
    def dtype(self) -> torch.dtype:
        return next(self.objective.model.parameters()).dtype

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return _to_device(batch, self.accelerator.device, self.dtype)


def setup(
    config: TrainConfig,
    *,
    resume: bool = False,
    instruction_fn: InstructionFn | None = None,
    objective_hook: Callable[[nn.Module], nn.Module] | None = None,
) -> Run:
    """Everything a run needs, cheapest checks first: the run folder (and, on resume, the recipe and
    the checkpoint's state files), then the data, then the model; on resume the optimizer, schedule
    and RNG state last, so that nothing after them draws random numbers the uninterrupted run did not."""
    from accelerate.utils import set_seed

    stage = get_stage(config.stage)
    if not resume:  # a run resumes with the recipe it recorded, as it was accepted then
        stage.check_config(config)
    check_sources(config.data.train, "data.train")
    check_sources(config.data.val, "data.val")
    accelerator = _accelerator(config)
    rank, world = accelerator.process_index, accelerator.num_processes
    start = _on_every_process(accelerator, lambda: open_run(config, resume=resume, rank=rank, world=world))
    set_seed(config.seed + rank)

    train_sets = load_sources(config.data.train, "data.train")  # the data first: a wrong source fails before a large model loads
    stage.check_sources(config, train_sets)
    val_sets = load_sources(config.data.val, "data.val") if config.data.max_val_samples > 0 else []
    backbone, n_trainable = _load_model(config, stage, start)
    provenance = start.state.get("provenance") or getattr(backbone.model.config, "training_state", "random-init")

    to_item = _item_maker(config, stage, instruction_fn)
    val_batches, val_counted = _validation_batches(config, stage, backbone, val_sets, to_item, rank, world)
    objective = stage.objective(
        backbone,
        StageSetup(config, train_sets, start.run_dir, resuming=start.checkpoint is not None, main=accelerator.is_main_process, provenance=provenance),
    )
    trained = objective_hook(objective) if objective_hook is not None else objective
    clock = TrainClock(config.schedule.max_minutes, float(start.state.get("train_seconds", 0.0)))
    optimizer, scheduler = _optimizer(config, trained, clock)
    trained, optimizer, scheduler = accelerator.prepare(trained, optimizer, scheduler)
    try:
        _on_every_process(accelerator, lambda: _restore_state(accelerator, start))
        if accelerator.is_main_process:  # only now: a refused resume leaves the run's config.yaml as it was
            atomic_write_text(start.run_dir / CONFIG_FILE, dump_config(config))
        loader = _loader(config, stage, backbone, train_sets, to_item, rank, world, start.step)
    except BaseException:
        del trained, optimizer, scheduler
        _end_training(accelerator)
        raise
    return Run(
        config, stage, accelerator, start, backbone, n_trainable, provenance,
        objective, trained, optimizer, scheduler, loader, val_batches, clock, val_counted,
    )  # fmt: skip


def _on_every_process(accelerator: Any, check: Callable[[], Any]) -> Any:
    """Run ``check`` on every process; when it fails on any, it fails on all (with that process's message),
    so that no process waits forever at a collective for one that stopped."""
    try:
        value, error = check(), None
    except (ValueError, OSError) as err:
        value, error = None, err
    if accelerator.num_processes > 1:
        from accelerate.utils import gather_object

        failed = [(i, m) for i, m in enumerate(gather_object([None if error is None else str(error)])) if m is not None]
        if failed and error is None:
            rank, message = failed[0]
            raise ValueError(f"process {rank} cannot start: {message}")
    if error is not None:
        raise error
    return value


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        step_scheduler_with_optimizer=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=bool(config.find_unused_parameters))],
    )
    # Model weights live in the save_pretrained files; accelerate_state holds the rest.
    accelerator.register_save_state_pre_hook(lambda models, weights, out: weights.clear())
    accelerator.register_load_state_pre_hook(lambda models, inp: models.clear())
    return accelerator


def _load_model(config: TrainConfig, stage: Stage, start: RunStart) -> tuple[Backbone, int]:
    """The starting model (the checkpoint's on resume), with LoRA and the trainable groups set."""
    backbone = load_backbone(
        str(start.checkpoint) if start.checkpoint is not None else config.model.init,
        seed=config.model.seed,
        dtype=resolve_dtype(config.model.dtype),
        load_in_4bit=config.model.load_in_4bit,
    )
    if config.model.lora is not None and stage.lora:
        backbone.add_lora(config.model.lora)
    stage.check_trainable(backbone.kind, config.trainable)
    n_trainable = backbone.set_trainable(config.trainable)
    if config.model.gradient_checkpointing:
        backbone.enable_gradient_checkpointing()
    backbone.train_mode()
    return backbone, n_trainable


def _item_maker(config: TrainConfig, stage: Stage, instruction_fn: InstructionFn | None) -> Callable[[Any, Any, int], Any]:
    """``(dataset, sample, index) -> item``: the Sample itself, or the instruction made of it."""
    if stage.takes_samples:
        return lambda dataset, sample, index: sample
    fn = instruction_fn or default_instruction_fn()

    def to_instruction(dataset: Any, sample: Any, index: int) -> Any:
        classes = getattr(dataset, "classes", None) or None
        names = getattr(dataset, "class_names", None) or None  # spellings humanise cannot find (UCM's glued names)
        return fn(sample, classes=classes, seed=config.seed, index=index, names=names)

    return to_instruction


def _validation_batches(
    config: TrainConfig, stage: Stage, backbone: Backbone, val_sets: list[Any], to_item: Callable[[Any, Any, int], Any],
    rank: int, world: int,
) -> tuple[list[dict[str, Any]], int]:
    """This process's share of the validation set (the first ``max_val_samples`` items), collated, and how many
    of its batches count (see :func:`validation_shard`)."""
    items: list[Any] = []
    for ds in val_sets:
        for i, sample in enumerate(ds):
            if len(items) >= config.data.max_val_samples:
                break
            items.append(to_item(ds, sample, i))
    chunks, counted = validation_shard(items, rank, world, config.data.batch_size)
    return [stage.collate(backbone, chunk, config.data.max_length) for chunk in chunks], counted


def validation_shard(items: list[Any], rank: int, world: int, batch_size: int) -> tuple[list[list[Any]], int]:
    """Process ``rank``'s validation items (every ``world``-th) cut into batches, and how many of them count.

    Every process gets as many batches as the one with the most (rank 0): each validation forward
    is a collective under DDP (its buffer broadcast) and FSDP (its all-gathers), so a process with
    fewer batches would leave the others waiting forever. The missing ones are filled with a
    batch of the first item, which is run but not counted.
    """
    if not items:
        return [], 0
    mine = items[rank::world]
    chunks = [mine[i : i + batch_size] for i in range(0, len(mine), batch_size)]
    most = math.ceil(len(items[0::world]) / batch_size)
    return chunks + [[items[0]]] * (most - len(chunks)), len(chunks)


def _loader(
    config: TrainConfig, stage: Stage, backbone: Backbone, train_sets: list[Any], to_item: Callable[[Any, Any, int], Any],
    rank: int, world: int, start_step: int,
) -> DataLoader:
    """This process's micro-batches from ``start_step`` on, in the seeded order of the mixture."""
    mixture = Mixture(train_sets, [s.weight for s in config.data.train], seed=config.seed)
    micro_batches = MicroBatches(
        mixture,
        lambda d, sample, pos: to_item(train_sets[d], sample, pos),
        lambda items: stage.collate(backbone, items, config.data.max_length),
        batch_size=config.data.batch_size, accum=config.optim.grad_accum, world=world, rank=rank,
        start_step=start_step, max_steps=config.schedule.max_steps,
    )  # fmt: skip
    return DataLoader(
        micro_batches,
        batch_size=None,
        num_workers=config.data.num_workers,
        # Its own generator: iter() must not draw from the global RNG, or a resumed run's RNG would drift.
        generator=torch.Generator().manual_seed(config.seed),
    )


def _optimizer(config: TrainConfig, trained: nn.Module, clock: TrainClock) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW over the trainable parameters (no weight decay on biases and norms) and the LR schedule."""
    optimizer = torch.optim.AdamW(
        _param_groups(trained, config.optim.weight_decay), lr=config.optim.lr, betas=config.optim.betas, eps=config.optim.eps
    )
    sched = config.schedule
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_lambda(s, sched.warmup_steps, sched.max_steps, sched.schedule, sched.min_lr_ratio, clock.progress),
    )
    return optimizer, scheduler


def _restore_state(accelerator: Any, start: RunStart) -> None:
    """On resume: optimizer, scheduler and this process's RNG from the checkpoint, checked restored."""
    if start.checkpoint is None:
        return
    folder = start.checkpoint / ACCELERATE_STATE
    try:
        accelerator.load_state(str(folder))
    except Exception as err:  # torch.load and the optimizer raise many types for a damaged file
        raise ResumeError(
            f"--resume: {folder} cannot be loaded ({type(err).__name__}: {err}); delete {start.checkpoint} to resume "
            f"from the checkpoint before it, or start a new run from its weights (--init {start.checkpoint})"
        ) from err
    check_rng_restored(start)


def fit(run: Run, log: MetricsLog) -> TrainResult:
    """Optimizer steps from the start step to ``max_steps`` (or the time limit), with logging,
    validation and step checkpoints; the caller saves the final checkpoint."""
    config, sched = run.config, run.config.schedule
    result = TrainResult(run_dir=run.run_dir, final_dir=run.run_dir / FINAL, steps=run.start.step, main_process=run.main)
    if run.val_batches and run.start.checkpoint is None:  # the starting point, so the curve shows what training changed
        _validate(run, 0, result, log)
    batches = iter(run.loader)
    window = Window()
    step = run.start.step
    run.clock.start()
    last = step >= sched.max_steps
    while not last:
        step_loss, grad_norm = _optimizer_step(run, batches, step)
        step += 1
        last = step >= sched.max_steps or run.clock.expired
        sps = window.add(run.global_batch, step_loss)
        log.advance(step, step_loss, sps)
        result.train_loss.append((step, step_loss))
        if step % config.logging.every == 0 or last:
            log.log(step, _train_values(run, window, sps, grad_norm))
            result.samples_per_s = sps
            window = Window()
        val_due = config.logging.val_every and step % config.logging.val_every == 0
        if run.val_batches and (val_due or last):
            _validate(run, step, result, log)
        if config.checkpoint.every and step % config.checkpoint.every == 0 and not last:
            save_checkpoint(run, f"{CHECKPOINT_PREFIX}{step:06d}", step, with_state=True)
    result.steps = step
    return result


def _optimizer_step(run: Run, batches: Iterator[dict[str, Any]], step: int) -> tuple[float, float | None]:
    """One optimizer step over ``grad_accum`` micro-batches; returns the loss per counted term and the grad norm.

    Raises:
        NonFiniteLossError: a non-finite loss or gradient norm, after saving a checkpoint of the weights before this step.
    """
    acc, objective, trained = run.accelerator, run.objective, run.trained
    micro = [objective.prepare(run.to_device(next(batches))) for _ in range(run.config.optim.grad_accum)]
    local = torch.tensor(float(sum(objective.count(b) for b in micro)), device=acc.device)
    total = max(acc.reduce(local, reduction="sum").item(), 1.0)
    loss_sum = torch.zeros((), device=acc.device)
    for i, batch in enumerate(micro):
        sync = acc.no_sync(trained) if i < len(micro) - 1 else contextlib.nullcontext()
        with sync:
            loss = trained(batch)
            # DDP/FSDP average gradients over processes; scale so the sum is over the global batch.
            acc.backward(loss * (run.world / total))
        loss_sum += loss.detach()
    step_loss = acc.reduce(loss_sum, reduction="sum").item() / total
    grad_norm, problem = None, f"loss ({step_loss})"
    if math.isfinite(step_loss):
        # The global gradient's norm (after DDP's all-reduce; FSDP combines its shards), so every process
        # decides alike; an infinite max_norm clips nothing. DeepSpeed clips in its own step (None).
        clip = run.config.optim.grad_clip
        norm = acc.clip_grad_norm_(trained.parameters(), clip if clip is not None else math.inf)
        grad_norm = float(norm) if norm is not None else None
        # fp16's loss scaler skips a step with inf/NaN gradients itself (and lowers its scale)
        skipped_by_scaler = acc.scaler is not None
        if grad_norm is None or math.isfinite(grad_norm) or skipped_by_scaler:
            problem = None
        else:
            problem = f"gradient norm ({grad_norm}; loss {step_loss:.4g})"
    if problem is not None:
        run.optimizer.zero_grad(set_to_none=True)
        where = save_checkpoint(run, f"{CHECKPOINT_PREFIX}{step:06d}", step, with_state=True)
        raise NonFiniteLossError(
            f"non-finite {problem} at step {step + 1}; stopped before applying it. The last finite weights "
            f"(after step {step}) are in {where}"
        )
    run.optimizer.step()
    run.clock.update(acc)  # before the scheduler, which reads the time progress
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return step_loss, grad_norm


def _train_values(run: Run, window: Window, sps: float, grad_norm: float | None) -> dict[str, float]:
    """What a logging step records: mean loss, LR, throughput, grad norm and the stage's own stats."""
    values = {"loss": window.loss / window.n, "lr": run.scheduler.get_last_lr()[0], "samples_per_s": sps}
    if grad_norm is not None:
        values["grad_norm"] = grad_norm
    stats = run.objective.pop_stats()  # e.g. SCST's reward terms, averaged over the processes
    if stats:
        means = run.accelerator.reduce(torch.tensor(list(stats.values()), device=run.accelerator.device), reduction="mean")
        values.update(zip(stats, means.tolist()))
    return values


@torch.no_grad()
def _validate(run: Run, at: int, result: TrainResult, log: MetricsLog) -> None:
    """``val_<key>``: the objective's validation sums over every process's share, divided by their ``n``."""
    keys = list(run.objective.validation_keys())  # fixed order, so every process reduces the same vector
    device = run.accelerator.device
    totals = torch.zeros(len(keys), device=device, dtype=torch.float64)
    run.trained.eval()
    try:
        for i, batch in enumerate(run.val_batches):
            sums = run.objective.validation_sums(run.to_device(batch), run.trained)
            if i < run.val_counted:  # the others only keep this process in step with the rest
                totals += torch.tensor([sums[k] for k in keys], device=device, dtype=torch.float64)
    finally:
        run.trained.train()
        run.backbone.train_mode()
    totals = run.accelerator.reduce(totals, reduction="sum")
    n = max(totals[keys.index("n")].item(), 1.0)
    values = {f"val_{k}": totals[i].item() / n for i, k in enumerate(keys) if k != "n"}
    result.val_metrics.append((at, values))
    if "val_loss" in values:
        result.val_loss.append((at, values["val_loss"]))
    log.log(at, values)


def save_checkpoint(run: Run, name: str, step: int, *, with_state: bool) -> Path:
    """Write ``run_dir/name`` atomically: model + processor, ``trainer_state.json`` and, ``with_state``,
    ``accelerate_state/``; every process calls it. Old step checkpoints beyond ``keep_last`` go."""
    from accelerate.utils import broadcast_object_list

    acc, config = run.accelerator, run.config
    target = run.run_dir / name
    model = run.objective.model
    prefix = next(n for n, m in acc.unwrap_model(run.trained).named_modules() if m is model) + "."
    sd = acc.get_state_dict(run.trained)  # gathers FSDP/DeepSpeed shards; every process calls it
    info = {"step": step, "provenance": run.provenance, "stage": config.stage, "global_batch": run.global_batch,
            "trainable": config.trainable, "trainable_parameters": run.n_trainable, "world_size": run.world,
            "train_seconds": run.clock.seconds()}  # fmt: skip
    sources = ", ".join(f"{s.name}/{s.split}" for s in config.data.train)

    def fill(tmp: Path | None) -> None:
        shared = Path(broadcast_object_list([str(tmp) if tmp else None])[0])
        if with_state:
            acc.save_state(str(shared / ACCELERATE_STATE))
        acc.wait_for_everyone()
        if run.main:
            model_sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)} if sd is not None else None
            previous = getattr(model.config, "training_state", None)
            model.config.training_state = run.stage.training_state(step, sources, run.provenance)
            try:
                run.backbone.save(shared, model=model, state_dict=model_sd)
            finally:
                model.config.training_state = previous
            (shared / STATE_FILE).write_text(json.dumps(info, indent=2))

    if run.main:
        with atomic_dir(target) as tmp:
            fill(tmp)
        if with_state:
            for old in checkpoints(run.run_dir)[: -config.checkpoint.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
    else:
        fill(None)
    acc.wait_for_everyone()
    return target
