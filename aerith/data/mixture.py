"""A weighted mixture of datasets, read as one deterministic sequence of ``(name, sample)``.

Semantics, per epoch of ``length`` items (default: the sum of the lengths of the
datasets whose weight is positive):

- Which dataset each position reads is drawn **with replacement**: an i.i.d.
  categorical draw with probabilities ``weight / sum(weights)``. A dataset's share
  of an epoch is therefore ``weight / sum(weights)`` in expectation, whatever its size.
- Within a dataset, samples are read **without replacement**: a seeded permutation
  of the dataset is walked in order; when it is used up a fresh permutation
  starts. Small datasets with a large weight repeat, large ones with a small
  weight are read in part (a different part every epoch); no sample repeats
  before every sample of its dataset has been read once in that epoch.
- Everything is a pure function of ``(seed, epoch)``, drawn from a
  ``numpy.random.Generator`` seeded with both: :meth:`Mixture.set_epoch` changes
  the order reproducibly and nothing reads or changes global random state.

A weight of ``0`` leaves a dataset out; a negative or non-finite weight, all
weights zero, or a weight for an unknown dataset (or a dataset without a weight)
is a ``ValueError`` naming it.

The training loop reads its recipe's sources with :class:`aerith.train.data.Mixture`
instead, where a weight is a number of passes over a dataset per epoch (shares follow
the datasets' sizes, every sample is seen an exact number of times) and the endless
stream is addressed by position alone, for resuming and per-process batches.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import numpy as np


class Mixture(Sequence[tuple[str, Any]]):
    """Datasets interleaved by weighted sampling; item ``i`` is ``(dataset name, sample)``.

    Args:
        datasets: name -> sequence of samples (any ``Sequence``: a loader, a list ...).
        weights: name -> non-negative weight; every dataset needs one.
        seed: seed of the order.
        length: items per epoch (default: total size of the datasets with positive weight).
    Raises:
        ValueError: a bad weight, an empty dataset with a positive weight, or ``length < 1``.
    """

    def __init__(
        self,
        datasets: Mapping[str, Sequence[Any]],
        weights: Mapping[str, float],
        *,
        seed: int = 0,
        length: int | None = None,
    ) -> None:
        if not datasets:
            raise ValueError("Mixture needs at least one dataset")
        unknown = [name for name in weights if name not in datasets]
        if unknown:
            raise ValueError(f"weight given for unknown dataset {unknown[0]!r}; datasets: {', '.join(datasets)}")
        missing = [name for name in datasets if name not in weights]
        if missing:
            raise ValueError(f"dataset {missing[0]!r} has no weight (use 0 to leave it out)")
        for name, w in weights.items():
            if not isinstance(w, numbers.Real) or isinstance(w, bool) or not math.isfinite(w) or w < 0:
                raise ValueError(f"weight of dataset {name!r} must be a finite number >= 0, got {w!r}")
            if w > 0 and len(datasets[name]) == 0:
                raise ValueError(f"dataset {name!r} is empty but has weight {w}")
        self.names: tuple[str, ...] = tuple(name for name in datasets if weights[name] > 0)
        if not self.names:
            raise ValueError(f"all weights are zero ({', '.join(f'{n}={weights[n]}' for n in datasets)})")
        self.datasets: dict[str, Sequence[Any]] = dict(datasets)
        self.weights: dict[str, float] = {name: float(weights[name]) for name in datasets}
        total = sum(self.weights[n] for n in self.names)
        self.probabilities: dict[str, float] = {n: self.weights[n] / total for n in self.names}
        self.seed = int(seed)
        self.length = int(length) if length is not None else sum(len(self.datasets[n]) for n in self.names)
        if self.length < 1:
            raise ValueError(f"length must be at least 1, got {length}")
        self.epoch = 0
        self._order = self._draw(0)

    def _draw(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """``(dataset number per position, sample index per position)`` of one epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        p = np.array([self.probabilities[n] for n in self.names])
        which = rng.choice(len(self.names), size=self.length, p=p)
        index = np.empty(self.length, dtype=np.int64)
        for d, name in enumerate(self.names):
            positions = np.flatnonzero(which == d)
            size = len(self.datasets[name])
            rounds = -(-len(positions) // size)  # ceil: whole permutations needed
            walk = np.concatenate([rng.permutation(size) for _ in range(rounds)]) if rounds else np.empty(0, np.int64)
            index[positions] = walk[: len(positions)]
        return which, index

    def set_epoch(self, epoch: int) -> None:
        """Switch to the order of ``epoch`` (a pure function of seed and epoch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch != self.epoch:
            self.epoch = int(epoch)
            self._order = self._draw(self.epoch)

    def locate(self, position: int) -> tuple[str, int]:
        """``(dataset name, sample index)`` at ``position`` of the current epoch."""
        if not -self.length <= position < self.length:
            raise IndexError(f"position {position} out of range for a mixture of length {self.length}")
        which, index = self._order
        return self.names[int(which[position])], int(index[position])

    def counts(self) -> dict[str, int]:
        """How many items of the current epoch each dataset gives (0 for left-out ones)."""
        which = self._order[0]
        drawn = np.bincount(which, minlength=len(self.names))
        return {name: int(drawn[self.names.index(name)]) if name in self.names else 0 for name in self.datasets}

    def __len__(self) -> int:
        return self.length

    @overload
    def __getitem__(self, position: int) -> tuple[str, Any]: ...
    @overload
    def __getitem__(self, position: slice) -> list[tuple[str, Any]]: ...
    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(self.length))]
        name, i = self.locate(position)
        return name, self.datasets[name][i]

    def __iter__(self) -> Iterator[tuple[str, Any]]:
        for position in range(self.length):
            yield self[position]

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={self.weights[n]:g}" for n in self.datasets)
        return f"Mixture({parts}; length={self.length}, seed={self.seed}, epoch={self.epoch})"
