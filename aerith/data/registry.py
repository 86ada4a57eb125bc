"""The dataset registry: a plain dict from name to loader class, filled explicitly."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from aerith.data.datasets.base import RSDataset

# name -> (module, class). Imported on first use so that `aerith --help` stays fast.
_LOADERS: dict[str, tuple[str, str]] = {
    "ucm": ("aerith.data.datasets.ucm", "UCMerced"),
    "aid": ("aerith.data.datasets.aid", "AID"),
    "nwpu-resisc45": ("aerith.data.datasets.nwpu_resisc45", "NWPURESISC45"),
    "whu-rs19": ("aerith.data.datasets.whu_rs19", "WHURS19"),
    "eurosat": ("aerith.data.datasets.eurosat", "EuroSAT"),
    "eurosat-ms": ("aerith.data.datasets.eurosat", "EuroSATMS"),
    "fmow": ("aerith.data.datasets.fmow", "FMoW"),
    "rsvg": ("aerith.data.datasets.rsvg", "RSVG"),
    "dior-rsvg": ("aerith.data.datasets.dior_rsvg", "DIORRSVG"),
    "rsicap": ("aerith.data.datasets.rsicap", "RSICap"),
    "rsieval": ("aerith.data.datasets.rsicap", "RSIEval"),
    "rsvqa-lr": ("aerith.data.datasets.rsvqa", "RSVQALR"),
    "rsvqa-hr": ("aerith.data.datasets.rsvqa", "RSVQAHR"),
    "rsitmd": ("aerith.data.datasets.karpathy", "RSITMD"),
    "rsicd": ("aerith.data.datasets.karpathy", "RSICD"),
    "ucm-captions": ("aerith.data.datasets.karpathy", "UCMCaptions"),
    "sydney-captions": ("aerith.data.datasets.karpathy", "SydneyCaptions"),
    "synthrs": ("aerith.data.datasets.synthrs", "SynthRS"),
    "vrsbench": ("aerith.data.datasets.vrsbench", "VRSBench"),
}


def list_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset`."""
    return sorted(_LOADERS)


def get_dataset_class(name: str) -> type[RSDataset]:
    key = name.lower()
    if key not in _LOADERS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(list_datasets())}")
    module, cls = _LOADERS[key]
    return getattr(importlib.import_module(module), cls)


def load_dataset(name: str, root: str | Path, split: str | None = None, **kwargs: Any) -> RSDataset:
    """Index dataset ``name`` as downloaded under ``root`` and return its ``split``.

    Args:
        name: a name from :func:`list_datasets` (case does not matter).
        root: the folder the dataset was downloaded or generated into.
        split: the split to read. ``None`` (the default) reads the dataset's
            ``default_split``: ``"train"`` for most datasets, ``"test"`` for
            test-only benchmarks such as ``rsieval`` (RSICap's evaluation set).
        **kwargs: passed to the loader (``on_bad="skip"``, ``task=...``, split options ...).
    Raises:
        KeyError: unknown or not yet built dataset (the message lists the available ones).
        ValueError: a split the dataset does not have (the message names the dataset, the
            split asked for and the dataset's splits).
        DatasetNotFoundError: ``root`` or the files the loader needs are missing.
    """
    return get_dataset_class(name)(root, split, **kwargs)
