"""How the quickstart spends its wall-clock budget, and the display that shows it."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

# Shares of the budget given to the training stages (and the box head's fit) as their time limits.
# The rest (data, model building, evaluation and the report) is measured, not limited: on two idle
# cores it took about 30 s of the default 10 minutes (runs of 9.7-9.8 minutes), so a busier or
# slower machine runs over the budget by what its evaluation takes longer. box_fit's share came from
# sft (0.60 before), scst (0.19) and from that margin (70 s before): the head needs about 3,000 steps
# on its encoded features to find objects. At 0.16 (1,250-1,700 steps) the fitted heads of seeds 0-2
# scored 16.8 / 20.8 / 17.4% Acc@0.5 on the test split, refitted with 3,000 steps 22.1 / 24.6 / 25.2%
# (benchmarks/RESULTS.md, grounding_experiments and quickstart).
STAGE_SHARES = {"align": 0.03, "sft": 0.51, "scst": 0.17, "box_fit": 0.23}
STAGES = ("synth", "align", "sft", "scst", "box_fit", "eval", "report")


@dataclass
class Budget:
    """The quickstart's clock: the total budget and where each stage spent its share."""

    minutes: float
    start: float = field(default_factory=time.monotonic)
    spent: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.minutes > 0:
            raise ValueError(f"--minutes must be > 0, got {self.minutes}")

    @property
    def seconds(self) -> float:
        return self.minutes * 60.0

    def limit_minutes(self, stage: str) -> float:
        """The time limit of a training stage, in minutes."""
        return self.minutes * STAGE_SHARES[stage]

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def left(self) -> float:
        return self.seconds - self.elapsed()


class StageDisplay:
    """One line: the stage, a bar of the budget, time spent and time left (rich, refreshed live)."""

    def __init__(self, budget: Budget, enabled: bool = True) -> None:
        self.budget = budget
        self.enabled = enabled
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> StageDisplay:
        if self.enabled:
            from rich.progress import BarColumn, Progress, ProgressColumn, TextColumn
            from rich.progress_bar import ProgressBar
            from rich.text import Text

            budget = self.budget

            class _BudgetBar(BarColumn):
                def render(self, task: Any) -> ProgressBar:
                    done = min(budget.elapsed(), budget.seconds)
                    return ProgressBar(total=budget.seconds, completed=done, width=self.bar_width, pulse=False)

            class _Clock(ProgressColumn):
                def render(self, task: Any) -> Text:
                    elapsed, left = budget.elapsed(), budget.left()
                    tail = f"{left // 60:.0f}:{left % 60:02.0f} left" if left >= 0 else f"{-left:.0f} s over"
                    return Text(f"{elapsed // 60:.0f}:{elapsed % 60:02.0f} of {budget.minutes:g} min, {tail}")

            self.progress = Progress(TextColumn("[bold]quickstart[/] {task.description}"), _BudgetBar(), _Clock(), refresh_per_second=2)
            self.task = self.progress.add_task("starting", total=budget.seconds)
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def log(self, message: str) -> None:
        if self.progress is not None:
            self.progress.console.print(message)
        else:
            print(message, flush=True)

    @contextmanager
    def stage(self, name: str, what: str):
        """Show ``name: what`` while the block runs and record its time in the budget."""
        if self.progress is not None:
            self.progress.update(self.task, description=f"{name}: {what}")
        tic = time.monotonic()
        try:
            yield
        finally:
            self.budget.spent[name] = self.budget.spent.get(name, 0.0) + time.monotonic() - tic
