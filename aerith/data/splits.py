"""Train/val/test splits: seeded stratified splits and torchgeo-style split files.

Two ways a loader picks the records of a split:

- **Split files** (the dataset's or torchgeo's official lists): one bare file
  name per line, e.g. ``uc_merced-train.txt`` or ``resisc45-val.txt``. Read
  them with :func:`read_split_file` and pick the listed records with
  :func:`select_by_name`. EuroSAT's lists name ``.jpg`` files; the
  multispectral copy stores ``.tif``: pass ``suffix=".tif"``.
- **Seeded stratified split** where a dataset has no official split:
  :func:`stratified_split`. Every class is split on its own with the ratios
  (default :data:`DEFAULT_RATIOS` = 0.7 / 0.1 / 0.2 train / val / test), so
  each split keeps the class balance. The result depends only on the items,
  their labels, the seed and the ratios - never on the order the file system
  listed them in - and a class's split does not change when other classes are
  added or removed.

Example::

    parts = stratified_split([(path, label) for ...], seed=0)
    train = parts["train"]            # list of (path, label)
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from aerith.data.errors import DatasetNotFoundError
from aerith.data.text import read_text

T = TypeVar("T")

SPLIT_NAMES: tuple[str, str, str] = ("train", "val", "test")
DEFAULT_RATIOS: tuple[float, float, float] = (0.7, 0.1, 0.2)

Ratios = Sequence[float] | Mapping[str, float]


def check_ratios(ratios: Ratios | None = None) -> tuple[float, float, float]:
    """Validate split ratios and return them as a ``(train, val, test)`` tuple.

    Args:
        ratios: three non-negative numbers summing to 1, as a sequence in
            train / val / test order or a mapping with those keys; ``None``
            gives :data:`DEFAULT_RATIOS`. ``(0.2, 0.0, 0.8)`` is AID's usual
            "20% train" protocol.

    Raises:
        ValueError: the ratios are not three non-negative numbers summing to 1.
    """
    if ratios is None:
        return DEFAULT_RATIOS
    if isinstance(ratios, Mapping):
        unknown = set(ratios) - set(SPLIT_NAMES)
        if unknown:
            raise ValueError(f"split ratios: unknown split(s) {sorted(unknown)}; valid: {', '.join(SPLIT_NAMES)}")
        values = [ratios.get(name, 0.0) for name in SPLIT_NAMES]
    else:
        values = list(ratios)
    if len(values) != 3:
        raise ValueError(f"split ratios must give train, val and test, got {len(values)} value(s): {values}")
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ValueError(f"split ratios must be numbers, got {values}") from err
    if any(not math.isfinite(v) or v < 0 for v in out):
        raise ValueError(f"split ratios must be finite and non-negative, got {out}")
    if abs(sum(out) - 1.0) > 1e-6:
        raise ValueError(f"split ratios must sum to 1, got {out} (sum {sum(out):g})")
    return out  # type: ignore[return-value]


def _split_counts(n: int, ratios: tuple[float, float, float]) -> list[int]:
    # Largest remainder: counts sum to n, and a split whose ratio is 0 stays empty.
    raw = [round(n * r, 9) for r in ratios]  # round away float noise such as 0.29 * 100
    counts = [math.floor(x) for x in raw]
    by_remainder = sorted(range(3), key=lambda i: (-(raw[i] - counts[i]), i))
    for i in by_remainder[: n - sum(counts)]:
        counts[i] += 1
    return counts


def stratified_split(
    items: Iterable[tuple[T, str]],
    *,
    seed: int = 0,
    ratios: Ratios | None = None,
    key: Callable[[T], str] = str,
) -> dict[str, list[tuple[T, str]]]:
    """Split ``(item, label)`` pairs into train / val / test, class by class.

    Within each label, items are sorted by ``key`` and shuffled by a generator
    seeded with ``(seed, label)``; the first share goes to train, the next to
    val, the rest to test (counts by largest remainder, so a 3-image class
    with 0.7/0.1/0.2 gives 2/0/1).

    Args:
        items: ``(item, label)`` pairs in any order.
        seed: the split's seed; the same seed gives the same split.
        ratios: see :func:`check_ratios`.
        key: a stable sort key for an item (e.g. its path relative to the
            dataset root); two items must not share a key within a label.

    Returns:
        ``{"train": [...], "val": [...], "test": [...]}``, each list sorted by
        label then key.

    Raises:
        ValueError: bad ratios, or two items of one label with the same key.
    """
    fractions = check_ratios(ratios)
    by_label: dict[str, list[tuple[str, T]]] = defaultdict(list)
    for item, label in items:
        by_label[label].append((key(item), item))
    out: dict[str, list[tuple[T, str]]] = {name: [] for name in SPLIT_NAMES}
    for label in sorted(by_label):
        members = sorted(by_label[label], key=lambda pair: pair[0])
        keys = [k for k, _ in members]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise ValueError(f"stratified_split: two items of label {label!r} share the key {dup!r}")
        random.Random(f"{seed}/{label}").shuffle(members)
        start = 0
        for name, count in zip(SPLIT_NAMES, _split_counts(len(members), fractions), strict=True):
            chosen = sorted(members[start : start + count], key=lambda pair: pair[0])
            out[name].extend((item, label) for _, item in chosen)
            start += count
    return out


def read_split_file(path: str | Path, *, suffix: str | None = None) -> list[str]:
    """Read a torchgeo-style split file: one bare file name per line.

    Blank lines are ignored, surrounding whitespace is stripped, a name given
    with folders keeps only its last part, and repeated names are kept once.

    Args:
        path: the split file.
        suffix: replace each name's extension with this one (``".tif"`` for
            EuroSAT-MS, whose official lists name the RGB ``.jpg`` files).

    Raises:
        DatasetNotFoundError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(path, "a split file listing one image file name per line")
    names: dict[str, None] = {}
    for line in read_text(path).splitlines():
        name = line.strip().replace("\\", "/").rsplit("/", 1)[-1]
        if not name:
            continue
        if suffix is not None:
            name = str(Path(name).with_suffix(suffix))
        names.setdefault(name, None)
    return list(names)


def find_split_file(folders: Iterable[str | Path], file_name: str) -> Path | None:
    """The first ``folder / file_name`` that exists, or ``None``."""
    for folder in folders:
        candidate = Path(folder) / file_name
        if candidate.is_file():
            return candidate
    return None


def select_by_name(items: Iterable[T], names: Iterable[str], name_of: Callable[[T], str]) -> tuple[list[T], list[str]]:
    """Pick the items whose name is listed.

    Args:
        items: the dataset's records, in the order the result should keep.
        names: the listed names (e.g. from :func:`read_split_file`).
        name_of: the name of an item as a split file writes it (its file name).

    Returns:
        ``(selected, missing)``: the listed items in ``items`` order, and the
        listed names that match no item, in listed order.
    """
    wanted = dict.fromkeys(names)
    selected = [item for item in items if name_of(item) in wanted]
    found = {name_of(item) for item in selected}
    missing = [name for name in wanted if name not in found]
    return selected, missing
