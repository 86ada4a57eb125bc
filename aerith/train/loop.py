"""The one training loop every stage runs, on Hugging Face accelerate.

One CPU process, or ``accelerate launch`` for DDP / FSDP / DeepSpeed. Per optimizer
step: ``grad_accum`` micro-batches per process, each loss normalised by the answer-token
(or patch) count of the whole global batch, so one process and N processes give the
same update for the same global batch; gradient clipping; AdamW with linear warmup
then cosine/linear/constant decay. Checkpoints are written atomically
(:func:`aerith.atomic.atomic_dir`): the model and processor in the ``save_pretrained``
format plus ``accelerate_state/`` (optimizer, scheduler and every process's RNG) and
``trainer_state.json``; ``resume=True`` continues from the newest one with the same
data order. A non-finite loss stops the run with a checkpoint of the last finite weights.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from aerith.atomic import atomic_dir, atomic_write_text
from aerith.runs import CHECKPOINT_PREFIX, FINAL, STATE_FILE, checkpoints
from aerith.train.backbones import Backbone, load_backbone
from aerith.train.config import TrainConfig, dump_config
from aerith.train.data import InstructionFn, MicroBatches, Mixture, default_instruction_fn, load_sources



class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; a checkpoint of the last finite weights was written."""


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


# -- helpers ------------------------------------------------------------------------------------------
def resolve_mixed_precision(choice: str) -> str:
    """``auto``: bf16 on a CUDA GPU that has it, else none (CPU autocast is not worth it here)."""
    if choice != "auto":
        return choice
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def resolve_dtype(name: str) -> torch.dtype:
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


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


def _to_device(batch: dict[str, Any], device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    """Tensors to the device (floats to the model's dtype); other values (SCST's references) pass through."""
    return {
        k: v.to(device, dtype=dtype if v.is_floating_point() else None) if isinstance(v, torch.Tensor) else v
        for k, v in batch.items()
    }


class _Logger:
    """JSONL metrics, TensorBoard (when installed) and the rich progress bar, on the main process only."""

    def __init__(self, run_dir: Path, config: TrainConfig, start_step: int, active: bool) -> None:
        self.active = active
        self.metrics = run_dir / "metrics.jsonl"
        self.writer = None
        self.progress = None
        if not active:
            return
        if self.metrics.exists():  # a resumed run rewrites what came after its checkpoint
            kept = [ln for ln in self.metrics.read_text().splitlines() if ln and json.loads(ln)["step"] <= start_step]
            atomic_write_text(self.metrics, "".join(k + "\n" for k in kept))
        if config.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=start_step + 1)
            except ImportError:
                print("TensorBoard is not installed: metrics go to metrics.jsonl only (pip install tensorboard)")
        if config.logging.progress:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn(f"[bold]{config.stage}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]:.4f}  {task.fields[sps]:.1f} samples/s"),
                TimeRemainingColumn(),
            )
            self.task = self.progress.add_task(config.stage, total=config.schedule.max_steps, completed=start_step, loss=float("nan"), sps=0.0)
            self.progress.start()

    def log(self, step: int, values: dict[str, float]) -> None:
        if not self.active:
            return
        with self.metrics.open("a") as f:
            f.write(json.dumps({"step": step, **values}) + "\n")
        if self.writer is not None:
            for k, v in values.items():
                self.writer.add_scalar(k, v, step)

    def advance(self, step: int, loss: float, sps: float) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=loss, sps=sps)

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        if self.writer is not None:
            self.writer.close()


# -- the loop -----------------------------------------------------------------------------------------
def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    instruction_fn: InstructionFn | None = None,
    objective_hook: Any = None,
) -> TrainResult:
    """Run ``config.stage`` to ``schedule.max_steps`` optimizer steps (or ``schedule.max_minutes``).

    Args:
        config: the resolved recipe.
        resume: continue from the newest checkpoint of ``config.out_dir``.
        instruction_fn: Sample -> Instruction (default ``aerith.data.instructions.to_instruction``).
        objective_hook: optional ``(objective) -> objective`` wrapper (tests use it to inject faults).
    Raises:
        FileExistsError: the run folder already has checkpoints and ``resume`` is false.
        NonFiniteLossError: the loss became NaN/inf; the message names the step and the checkpoint.
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, broadcast_object_list, set_seed

    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        step_scheduler_with_optimizer=False,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=bool(config.find_unused_parameters))],
    )
    rank, world, main = accelerator.process_index, accelerator.num_processes, accelerator.is_main_process
    run_dir = Path(config.out_dir)
    existing = checkpoints(run_dir) if run_dir.is_dir() else []
    if resume and not existing:
        raise FileNotFoundError(f"--resume: {run_dir} has no {CHECKPOINT_PREFIX}N folder to resume from")
    if not resume and (existing or (run_dir / FINAL).exists()):
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another out_dir")
    resume_from = existing[-1] if resume else None
    state = json.loads((resume_from / STATE_FILE).read_text()) if resume_from else {}
    start_step = int(state.get("step", 0))
    set_seed(config.seed + rank)

    # the data first: a wrong source fails before a large model loads
    train_sets = load_sources(config.data.train)
    if config.stage == "scst":
        from aerith.train.scst import check_sources

        check_sources(config, train_sets)
    backbone = load_backbone(
        str(resume_from) if resume_from else config.model.init,
        seed=config.model.seed,
        dtype=resolve_dtype(config.model.dtype),
        load_in_4bit=config.model.load_in_4bit,
    )
    provenance = state.get("provenance") or getattr(backbone.model.config, "training_state", "random-init")
    if config.model.lora is not None and config.stage != "align":
        backbone.add_lora(config.model.lora)
    n_trainable = backbone.set_trainable(config.trainable, config.stage)
    if config.model.gradient_checkpointing:
        backbone.enable_gradient_checkpointing()
    backbone.train_mode()

    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / "config.yaml", dump_config(config))
    raw_samples = config.stage in ("align", "scst")  # items are Samples, not instructions
    fn = instruction_fn or (default_instruction_fn() if not raw_samples else None)
    mixture = Mixture(train_sets, [s.weight for s in config.data.train], seed=config.seed)
    sources = ", ".join(f"{s.name}/{s.split}" for s in config.data.train)

    def make_item(d: int, sample: Any, pos: int) -> Any:
        if raw_samples:
            return sample
        classes = getattr(train_sets[d], "classes", None) or None
        return fn(sample, classes=classes, seed=config.seed, index=pos)

    def collate(items: list[Any]) -> dict[str, torch.Tensor]:
        return backbone.collate(config.stage, items, config.data.max_length)

    val_batches = _validation_batches(config, backbone, fn, collate, rank, world)

    if config.stage == "scst":
        from aerith.train.scst import prepare_reward

        reward = prepare_reward(config, train_sets, run_dir, resume=resume_from is not None, main=main, provenance=provenance)
        objective = backbone.objective("scst", reward=reward, settings=config.scst)
    else:
        objective = backbone.objective(config.stage)
    if objective_hook is not None:
        objective = objective_hook(objective)
    optimizer = torch.optim.AdamW(
        _param_groups(objective, config.optim.weight_decay), lr=config.optim.lr, betas=config.optim.betas, eps=config.optim.eps
    )
    sched = config.schedule
    clock = _Clock(sched.max_minutes, float(state.get("train_seconds", 0.0)))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda s: lr_lambda(s, sched.warmup_steps, sched.max_steps, sched.schedule, sched.min_lr_ratio, clock.progress),
    )
    objective, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)
    # Model weights live in the save_pretrained files; accelerate_state holds the rest.
    accelerator.register_save_state_pre_hook(lambda models, weights, out: weights.clear())
    accelerator.register_load_state_pre_hook(lambda models, inp: models.clear())
    if resume_from is not None:
        accelerator.load_state(str(resume_from / "accelerate_state"))

    core = accelerator.unwrap_model(objective)
    unwrapped = core.model
    # SCST: sample and score under no_grad first; the loss normaliser (sampled tokens) is known only after it.
    rollout = getattr(core, "rollout", None)
    prefix = next(n for n, m in accelerator.unwrap_model(objective).named_modules() if m is unwrapped) + "."
    dtype = next(unwrapped.parameters()).dtype
    loader = DataLoader(
        MicroBatches(
            mixture, make_item, collate,
            batch_size=config.data.batch_size, accum=config.optim.grad_accum, world=world, rank=rank,
            start_step=start_step, max_steps=sched.max_steps,
        ),
        batch_size=None,
        num_workers=config.data.num_workers,
        # Its own generator: iter() must not draw from the global RNG, or a resumed run's RNG would drift.
        generator=torch.Generator().manual_seed(config.seed),
    )
    global_batch = config.data.batch_size * config.optim.grad_accum * world

    def stage_state(step: int) -> str:
        return f"{config.stage}: {step} steps on {sources} (from {provenance})"

    def save(name: str, step: int, with_state: bool) -> Path:
        target = run_dir / name
        sd = accelerator.get_state_dict(objective)  # gathers FSDP/DeepSpeed shards; every process calls it
        info = {"step": step, "provenance": provenance, "stage": config.stage, "global_batch": global_batch,
                "trainable": config.trainable, "trainable_parameters": n_trainable, "world_size": world,
                "train_seconds": clock.seconds()}

        def fill(tmp: Path | None) -> None:
            shared = Path(broadcast_object_list([str(tmp) if tmp else None])[0])
            if with_state:
                accelerator.save_state(str(shared / "accelerate_state"))
            accelerator.wait_for_everyone()
            if main:
                model_sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)} if sd is not None else None
                previous = unwrapped.config.training_state if hasattr(unwrapped.config, "training_state") else None
                unwrapped.config.training_state = stage_state(step)
                try:
                    backbone.save(shared, model=unwrapped, state_dict=model_sd)
                finally:
                    unwrapped.config.training_state = previous
                (shared / STATE_FILE).write_text(json.dumps(info, indent=2))

        if main:
            with atomic_dir(target) as tmp:
                fill(tmp)
            if with_state:
                for old in checkpoints(run_dir)[: -config.checkpoint.keep_last]:
                    shutil.rmtree(old, ignore_errors=True)
        else:
            fill(None)
        accelerator.wait_for_everyone()
        return target

    log = _Logger(run_dir, config, start_step, main)
    result = TrainResult(run_dir=run_dir, final_dir=run_dir / FINAL, steps=start_step)
    step, window_t, window_samples, window_loss, window_n = start_step, time.perf_counter(), 0, 0.0, 0
    device = accelerator.device
    batches = iter(loader)
    try:
        def validate(at: int) -> None:
            if hasattr(core, "validation_sums"):
                values = _validate_metrics(core, val_batches, accelerator, dtype)
                result.val_metrics.append((at, values))
            else:
                values = {"val_loss": _validate(objective, backbone, config.stage, val_batches, accelerator, dtype)}
                result.val_loss.append((at, values["val_loss"]))
            log.log(at, values)

        if val_batches and start_step == 0:  # the starting point, so the curve shows what training changed
            validate(0)
        clock.start()
        last = step >= sched.max_steps
        while not last:
            micro = [next(batches) for _ in range(config.optim.grad_accum)]
            if rollout is not None:
                micro = [rollout(_to_device(b, device, dtype)) for b in micro]
            local = torch.tensor(float(sum(backbone.count(config.stage, b) for b in micro)), device=device)
            total = accelerator.reduce(local, reduction="sum").item()
            loss_sum = torch.zeros((), device=device)
            for i, batch in enumerate(micro):
                batch = _to_device(batch, device, dtype)
                sync = accelerator.no_sync(objective) if i < len(micro) - 1 else _null()
                with sync:
                    loss = objective(batch)
                    # DDP/FSDP average gradients over processes; scale so the sum is over the global batch.
                    accelerator.backward(loss * (world / max(total, 1.0)))
                loss_sum += loss.detach()
            step_loss = accelerator.reduce(loss_sum, reduction="sum").item() / max(total, 1.0)
            if not math.isfinite(step_loss):
                optimizer.zero_grad(set_to_none=True)
                where = save(f"{CHECKPOINT_PREFIX}{step:06d}", step, with_state=True)
                raise NonFiniteLossError(
                    f"non-finite loss ({step_loss}) at step {step + 1}; stopped. The last finite weights "
                    f"(after step {step}) are in {where}"
                )
            grad_norm = None
            if config.optim.grad_clip is not None:
                grad_norm = accelerator.clip_grad_norm_(objective.parameters(), config.optim.grad_clip)
            optimizer.step()
            clock.update(accelerator)  # before the scheduler, which reads the time progress
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            last = step >= sched.max_steps or clock.expired
            window_samples += global_batch
            window_loss += step_loss
            window_n += 1
            elapsed = time.perf_counter() - window_t
            sps = window_samples / elapsed if elapsed > 0 else 0.0
            log.advance(step, step_loss, sps)
            result.train_loss.append((step, step_loss))
            if step % config.logging.every == 0 or last:
                values = {"loss": window_loss / window_n, "lr": scheduler.get_last_lr()[0], "samples_per_s": sps}
                if grad_norm is not None:
                    values["grad_norm"] = float(grad_norm)
                if hasattr(core, "pop_stats"):  # e.g. SCST's reward terms, averaged over the processes
                    stats = core.pop_stats()
                    means = accelerator.reduce(torch.tensor(list(stats.values()), device=device), reduction="mean")
                    values.update(zip(stats, means.tolist()))
                log.log(step, values)
                result.samples_per_s = sps
                window_t, window_samples, window_loss, window_n = time.perf_counter(), 0, 0.0, 0
            val_due = config.logging.val_every and step % config.logging.val_every == 0
            if val_batches and (val_due or last):
                validate(step)
            if config.checkpoint.every and step % config.checkpoint.every == 0 and not last:
                save(f"{CHECKPOINT_PREFIX}{step:06d}", step, with_state=True)
        result.steps = step
        save(FINAL, step, with_state=False)
    finally:
        log.close()
    accelerator.end_training()
    return result


class _Clock:
    """Training seconds of the run (resumed runs continue the count) against an optional limit.

    Every process reads the main process's clock, so all of them stop after the same step.
    """

    def __init__(self, max_minutes: float | None, seconds_before: float) -> None:
        self.limit = max_minutes * 60 if max_minutes is not None else None
        self.before = seconds_before
        self.t0: float | None = None
        self.progress = 0.0  # fraction of the limit used (read by the LR schedule)
        self.expired = False

    def start(self) -> None:
        self.t0 = time.perf_counter()

    def seconds(self) -> float:
        return self.before + (time.perf_counter() - self.t0 if self.t0 is not None else 0.0)

    def update(self, accelerator) -> None:
        if self.limit is None:
            return
        from accelerate.utils import broadcast_object_list

        seconds = self.seconds()
        if accelerator.num_processes > 1:
            seconds = broadcast_object_list([seconds])[0]
        self.progress = min(1.0, seconds / self.limit)
        self.expired = seconds >= self.limit


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _validation_batches(config: TrainConfig, backbone: Backbone, fn, collate, rank: int, world: int) -> list[dict]:
    """This process's share of the validation set (the first ``max_val_samples`` items), collated."""
    if not config.data.val or config.data.max_val_samples == 0:
        return []
    items = []
    for ds in load_sources(config.data.val):
        classes = getattr(ds, "classes", None) or None
        for i, sample in enumerate(ds):
            if len(items) >= config.data.max_val_samples:
                break
            raw = config.stage in ("align", "scst")
            items.append(sample if raw else fn(sample, classes=classes, seed=config.seed, index=i))
    mine = items[rank::world]
    b = config.data.batch_size
    return [collate(mine[i : i + b]) for i in range(0, len(mine), b)]


@torch.no_grad()
def _validate(objective, backbone: Backbone, stage: str, batches: list[dict], accelerator, dtype) -> float:
    """Mean loss per answer token (SFT) or per patch (align: cosine distance) over the validation set."""
    objective.eval()
    loss_sum = torch.zeros((), device=accelerator.device)
    count = torch.zeros((), device=accelerator.device)
    for batch in batches:
        count += backbone.count(stage, batch)
        loss_sum += objective(_to_device(batch, accelerator.device, dtype)).float()
    backbone.train_mode()
    total = accelerator.reduce(torch.stack([loss_sum, count]), reduction="sum")
    return (total[0] / total[1].clamp(min=1)).item()


@torch.no_grad()
def _validate_metrics(core, batches: list[dict], accelerator, dtype) -> dict[str, float]:
    """Stages that validate by scoring outputs (SCST): ``val_<name>`` = summed ``validation_sums`` / their ``n``."""
    keys = list(core.validation_keys())  # fixed order, so every process reduces the same vector
    totals = torch.zeros(len(keys), device=accelerator.device, dtype=torch.float64)
    for batch in batches:
        sums = core.validation_sums(_to_device(batch, accelerator.device, dtype))
        totals += torch.tensor([sums[k] for k in keys], device=accelerator.device, dtype=torch.float64)
    totals = accelerator.reduce(totals, reduction="sum")
    n = max(totals[keys.index("n")].item(), 1.0)
    return {f"val_{k}": totals[i].item() / n for i, k in enumerate(keys) if k != "n"}
