"""What a training stage plugs into the one loop (:func:`aerith.train.loop.train`).

A stage is a :class:`Stage` value exported by its module (``ALIGN`` in
:mod:`aerith.train.align`, ``SFT`` in :mod:`aerith.train.sft`, ``SCST`` in
:mod:`aerith.train.scst`) and listed in :data:`aerith.train.stages.STAGES`. It says
what its items are (raw Samples or instructions), checks its data sources before the
model loads, says which parameter groups may train, collates items into batches and
builds its objective: a :class:`StageObjective`, whose methods are everything the loop
asks of a stage while it trains (the batch preparation, the loss and its normaliser,
validation, the extra logged values). The loop never asks which stage it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from aerith.train.backbones import Backbone
    from aerith.train.config import TrainConfig

Batch = dict[str, Any]


@dataclass(frozen=True)
class StageSetup:
    """What a stage's objective may need besides the model.

    Attributes:
        config: the resolved recipe.
        train_sets: the opened training sources, in recipe order.
        run_dir: the run folder (exists on the main process).
        resuming: the run continues from a checkpoint.
        main: this is the main process (the one that writes files).
        provenance: what the starting weights are (``random-init`` for a random preset).
    """

    config: TrainConfig
    train_sets: Sequence[Any]
    run_dir: Path
    resuming: bool
    main: bool
    provenance: str


class StageObjective(nn.Module):
    """A stage's loss module; the loop trains through it, so DDP/FSDP wrap it.

    ``forward(batch)`` returns the loss *summed* over ``count(batch)`` terms (answer tokens,
    patches, sampled tokens ...); the loop divides by the count of the whole global batch,
    so one process and N processes make the same update.

    Args:
        model: the model being trained (saved from ``objective.model``).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: Batch) -> torch.Tensor:
        """The summed loss of a prepared batch."""
        raise NotImplementedError

    def count(self, batch: Batch) -> int:
        """How many terms ``forward`` sums over this prepared batch (the loss normaliser)."""
        raise NotImplementedError

    def prepare(self, batch: Batch) -> Batch:
        """What the loss needs beyond the collated batch (on the device); called outside autograd's reach
        on every micro-batch of a step before any loss. Default: the batch as it is."""
        return batch

    def validation_keys(self) -> tuple[str, ...]:
        """The keys of :meth:`validation_sums` in a fixed order; ``n`` is the divisor of the others."""
        return ("loss", "n")

    def validation_sums(self, batch: Batch, loss: Callable[[Batch], torch.Tensor]) -> dict[str, float]:
        """Summed validation values of one batch (logged as ``val_<key>`` = sum / ``n``).

        Args:
            batch: a collated validation batch, on the device.
            loss: the objective as the loop trains it (possibly wrapped by DDP/FSDP) to compute the loss with.

        Default: the summed loss and its count, so ``val_loss`` is the loss per term.
        """
        return {"loss": float(loss(batch).float()), "n": float(self.count(batch))}

    def pop_stats(self) -> dict[str, float]:
        """Extra values to log at this logging step (means since the last call); default none."""
        return {}


@dataclass(frozen=True)
class Stage:
    """One training stage as the loop sees it.

    Attributes:
        name: the recipe's ``stage`` and the CLI command.
        takes_samples: items are raw :class:`aerith.data.Sample` objects (``True``) or the
            instructions an instruction function makes of them (``False``).
        collate: ``(backbone, items, max_length) -> batch``.
        objective: ``(backbone, setup) -> StageObjective``.
        check_sources: ``(config, train_sets) -> None``, raising ``ValueError`` naming a wrong source;
            runs before the model loads.
        trainable: model kind -> the parameter groups this stage may train; ``None``: any group
            of any model kind. A kind missing from the mapping cannot run this stage.
        trainable_why: why the others may not, for the error message.
        lora: whether the recipe's ``model.lora`` is added in this stage.
        trains_language: the stage trains some part of the path from image to answer (alignment
            does not), so a model it trained from random weights is no longer labelled random.
        sections: the recipe's stage-specific sections this stage reads (``scst``); settings in
            another stage's section are refused, not ignored.
    """

    name: str
    takes_samples: bool
    collate: Callable[[Backbone, Sequence[Any], int], Batch]
    objective: Callable[[Backbone, StageSetup], StageObjective]
    check_sources: Callable[[TrainConfig, Sequence[Any]], None] = lambda config, train_sets: None
    trainable: Mapping[str, tuple[str, ...]] | None = None
    trainable_why: str = ""
    lora: bool = True
    trains_language: bool = True
    sections: tuple[str, ...] = ()

    def check_config(self, config: TrainConfig) -> None:
        """Refuse settings this stage would ignore (another stage's section, LoRA where none is added)."""
        from aerith.train.config import SCSTConfig

        if "scst" not in self.sections and config.scst != SCSTConfig():
            raise ValueError(f"scst: settings of the scst stage, which `aerith {self.name}` does not read; remove them")
        if not self.lora and config.model.lora is not None:
            raise ValueError(f"model.lora: the {self.name} stage adds no LoRA adapters; remove it (add LoRA in sft)")

    def training_state(self, step: int, sources: str, provenance: str) -> str:
        """A checkpoint's provenance; a random start stays first when this stage does not train the answer path."""
        from aerith.infer.facade import RANDOM_INIT

        if not self.trains_language and provenance.startswith(RANDOM_INIT):
            return f"{provenance}; {self.name}: {step} steps on {sources}"
        return f"{self.name}: {step} steps on {sources} (from {provenance})"

    def check_trainable(self, kind: str, names: Sequence[str]) -> None:
        """Refuse groups this stage may not train on a model of ``kind`` (before the model's own group check)."""
        if self.trainable is None:
            return
        if kind not in self.trainable:
            raise ValueError(f"the {self.name} stage trains {' or '.join(self.trainable)} models, not {kind}")
        allowed = self.trainable[kind]
        wrong = [n for n in names if n not in allowed]
        if wrong:
            why = f" ({self.trainable_why})" if self.trainable_why else ""
            raise ValueError(f"{self.name} trains only {allowed}{why}; got {wrong}")
