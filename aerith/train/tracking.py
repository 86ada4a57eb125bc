"""What a run records as it goes: metrics (JSONL, TensorBoard, progress bar), its clock and throughput."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from aerith.atomic import atomic_write_text

if TYPE_CHECKING:
    from aerith.train.config import TrainConfig


class MetricsLog:
    """JSONL metrics, TensorBoard (when installed) and the rich progress bar, on the main process only."""

    def __init__(self, run_dir: Path, config: TrainConfig, start_step: int, active: bool, *, resumed: bool) -> None:
        """``resumed``: the run continues from its checkpoint at ``start_step`` and keeps the metrics up to it;
        a fresh run keeps none (a folder may hold those of a run that failed before its first checkpoint)."""
        self.active = active
        self.metrics = run_dir / "metrics.jsonl"
        self.writer = None
        self.progress = None
        if not active:
            return
        if self.metrics.exists():  # a resumed run rewrites what came after its checkpoint
            kept, dropped = [], 0
            if resumed:
                kept, dropped = _metrics_until(self.metrics.read_text(encoding="utf-8", errors="replace"), start_step)
            if dropped:  # a run killed while it wrote a line leaves that line cut
                print(f"WARNING: {self.metrics}: dropped {dropped} unreadable line(s)")
            atomic_write_text(self.metrics, "".join(k + "\n" for k in kept))
        if config.logging.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                # TensorBoard discards earlier files' events from purge_step on (a fresh run: all of them)
                purge_step = start_step + 1 if resumed else 0
                self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge_step)
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


def _metrics_until(text: str, step: int) -> tuple[list[str], int]:
    """The metrics lines up to ``step``, and how many lines could not be read."""
    kept, dropped = [], 0
    for line in filter(None, text.splitlines()):
        try:
            record_step = json.loads(line)["step"]
        except (ValueError, KeyError, TypeError):
            dropped += 1
            continue
        if isinstance(record_step, int) and record_step <= step:
            kept.append(line)
    return kept, dropped


class TrainClock:
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


class Window:
    """Losses and samples since the last logging step."""

    def __init__(self) -> None:
        self.t0, self.samples, self.loss, self.n = time.perf_counter(), 0, 0.0, 0

    def add(self, samples: int, loss: float) -> float:
        """Count a step; returns samples per second over the window."""
        self.samples += samples
        self.loss += loss
        self.n += 1
        elapsed = time.perf_counter() - self.t0
        return self.samples / elapsed if elapsed > 0 else 0.0
