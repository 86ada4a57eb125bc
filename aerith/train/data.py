"""Seeded, resumable data order over a weighted mixture of datasets, cut into per-process micro-batches.

The order is a pure function of ``(seed, epoch)``: each epoch of the mixture is a
permutation drawn from a ``torch.Generator`` seeded with the seed and the epoch
index, so a run resumed at step ``s`` reads exactly the items the uninterrupted
run would have read. Global step ``s`` takes the stream positions
``[s * G, (s + 1) * G)`` (``G`` = batch size x processes x accumulation), and
micro-batch ``m`` of process ``r`` takes the ``b`` positions starting at
``s * G + (m * world + r) * b``. Gradients are normalised by the global token
count, so how the global batch is cut does not change the update.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from aerith.train.config import DataSource

InstructionFn = Callable[..., Any]


def default_instruction_fn() -> InstructionFn:
    """``aerith.data.instructions.to_instruction``: seeded phrasings of each task."""
    from aerith.data.instructions import to_instruction

    return to_instruction


def check_sources(sources: Sequence[DataSource], where: str) -> None:
    """Each source names a registered dataset and only options its loader takes; checked before anything
    loads or is written (an unknown option reached the loader as a ``TypeError``).

    Raises:
        ValueError: naming the source's key (``data.train.0.options``), the dataset and the valid names.
    """
    from aerith.data.commands import check_options
    from aerith.data.registry import get_dataset_class

    for i, src in enumerate(sources):
        try:
            get_dataset_class(src.name)
        except KeyError as err:
            raise ValueError(f"{where}.{i}.name: {err.args[0] if err.args else err}") from None
        try:
            check_options(src.name, src.options)
        except ValueError as err:
            raise ValueError(f"{where}.{i}.options: {err}") from None


def load_sources(sources: Sequence[DataSource], where: str | None = None) -> list[Any]:
    """Open each source through the dataset registry; empty ones are an error naming the source
    (prefixed ``where.i: `` when ``where`` names the recipe's list, ``data.train`` or ``data.val``).

    Every image is checked when its source is indexed (``verify_images``, header level, unless
    the source's options say otherwise): an unreadable one stops the run before the model
    loads, naming the file, or with ``on_bad: skip`` is left out and counted.
    """
    from aerith.data import load_dataset

    datasets = []
    for i, src in enumerate(sources):
        ds = load_dataset(src.name, src.root, split=src.split, **{"verify_images": True, **src.options})
        if len(ds) == 0:
            key = f"{where}.{i}: " if where else ""
            raise ValueError(f"{key}data source {src.name} ({src.root}, split {src.split}) has no samples")
        datasets.append(ds)
    return datasets


def _generator(*keys: int) -> torch.Generator:
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k)) % (2**63 - 1)
    return torch.Generator().manual_seed(seed)


class Mixture:
    """Datasets with weights, read as an endless seeded stream of ``(dataset, index)`` pairs.

    A weight is how many times each sample is seen per mixture epoch: ``2`` repeats
    the dataset, ``0.5`` takes a seeded half of it (a new half every epoch; halves round
    up, and a fraction of a small dataset takes at least one sample).

    Not :class:`aerith.data.mixture.Mixture`, whose weights are sampling probabilities
    (each position's dataset drawn with replacement, shares independent of dataset
    sizes). Here a weight counts passes, so a recipe's shares follow the datasets'
    sizes, each sample is seen an exact number of times per epoch, and the stream is
    addressed by position alone (what resuming and per-process batches need).
    """

    def __init__(self, datasets: Sequence[Sequence[Any]], weights: Sequence[float], seed: int) -> None:
        if len(datasets) != len(weights) or not datasets:
            raise ValueError("Mixture needs one weight per dataset and at least one dataset")
        self.datasets = list(datasets)
        self.weights = [float(w) for w in weights]
        self.seed = int(seed)
        self._cache: dict[int, list[tuple[int, int]]] = {}
        self.epoch_size = len(self.epoch_order(0))
        if self.epoch_size == 0:
            raise ValueError("the data mixture is empty after weighting")

    def epoch_order(self, epoch: int) -> list[tuple[int, int]]:
        if epoch not in self._cache:
            pairs: list[tuple[int, int]] = []
            for d, (ds, w) in enumerate(zip(self.datasets, self.weights, strict=True)):
                whole, frac = int(math.floor(w)), w - math.floor(w)
                idx = list(range(len(ds))) * whole
                if frac > 0:
                    extra = torch.randperm(len(ds), generator=_generator(self.seed, epoch, d, 1))
                    # halves round up, and a weight above 0 keeps at least one sample (round() gave 0 of
                    # 0.5 x 1 or 0.01 x 40 samples: the source dropped out of training without a word)
                    idx += extra[: max(1, math.floor(frac * len(ds) + 0.5))].tolist()
                pairs += [(d, i) for i in idx]
            perm = torch.randperm(len(pairs), generator=_generator(self.seed, epoch, 7))
            self._cache = {epoch: [pairs[i] for i in perm.tolist()]}  # keep one epoch in memory
        return self._cache[epoch]

    def at(self, position: int) -> tuple[int, int]:
        """``(dataset, index)`` at stream ``position`` (epochs follow each other)."""
        epoch, offset = divmod(position, self.epoch_size)
        return self.epoch_order(epoch)[offset]


class MicroBatches(Dataset):
    """Item ``i`` is this process's ``i``-th collated micro-batch from ``start_step`` on.

    Args:
        mixture: the training stream.
        make_item: ``(dataset_index, sample, stream_position) -> item`` the collate function takes.
        collate: items -> batch of tensors.
        batch_size / accum / world / rank: micro-batch size, accumulation steps, processes, this process.
        start_step / max_steps: the optimizer steps this loader covers.
    """

    def __init__(
        self,
        mixture: Mixture,
        make_item: Callable[[int, Any, int], Any],
        collate: Callable[[list[Any]], dict[str, torch.Tensor]],
        *,
        batch_size: int,
        accum: int,
        world: int,
        rank: int,
        start_step: int,
        max_steps: int,
    ) -> None:
        self.mixture, self.make_item, self.collate = mixture, make_item, collate
        self.b, self.accum, self.world, self.rank = batch_size, accum, world, rank
        if not 0 <= start_step <= max_steps:
            raise ValueError(f"the loader starts at step {start_step}, outside 0..max_steps ({max_steps})")
        self.start_step, self.max_steps = start_step, max_steps
        self.global_batch = batch_size * accum * world

    def __len__(self) -> int:
        return (self.max_steps - self.start_step) * self.accum

    def positions(self, i: int) -> list[int]:
        step, micro = divmod(i, self.accum)
        base = (self.start_step + step) * self.global_batch + (micro * self.world + self.rank) * self.b
        return list(range(base, base + self.b))

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        items = []
        for pos in self.positions(i):
            d, idx = self.mixture.at(pos)
            items.append(self.make_item(d, self.mixture.datasets[d][idx], pos))
        return self.collate(items)
