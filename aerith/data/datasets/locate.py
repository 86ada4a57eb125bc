"""Finding a dataset below the root a user gives, and refusing a root that holds several.

Every loader that looks below its root for its files does it the same way:
it collects *every* folder that qualifies (the root itself, known sub-folder
names, or any folder down to a small depth) and takes it only when there is
exactly one. Two copies of a dataset, or two datasets that share a file name
(UCM-Captions and Sydney-Captions both call theirs ``dataset.json``), under
one root are refused with :class:`~aerith.data.errors.AmbiguousRootError`
listing the candidates, never resolved by the order folders sort in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from aerith.data.errors import AmbiguousRootError

_SKIPPED = ("__macosx",)


def folders_below(root: Path, depth: int) -> list[Path]:
    """``root`` and its sub-folders down to ``depth`` levels, sorted, without hidden or ``__MACOSX`` folders.

    Uses ``os.scandir`` so that folders of many image files cost no ``stat`` per file.
    """
    out = [root]
    level = [root]
    for _ in range(depth):
        nxt = []
        for folder in level:
            try:
                with os.scandir(folder) as entries:
                    children = sorted(
                        Path(e.path)
                        for e in entries
                        if e.is_dir() and not e.name.startswith(".") and e.name.lower() not in _SKIPPED
                    )
            except OSError:
                continue
            nxt += children
        out += nxt
        level = nxt
    return out


def distinct(paths: Iterable[Path]) -> list[Path]:
    """``paths`` without repeats of one folder (``RSVG`` and ``rsvg`` on a case-insensitive disk, symlinks)."""
    seen: dict[Path, Path] = {}
    for path in paths:
        try:
            key = path.resolve()
        except OSError:
            key = path
        seen.setdefault(key, path)
    return list(seen.values())


def shown(root: Path, path: Path) -> str:
    """``path`` relative to ``root`` where it is below it (``.`` for the root itself)."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return str(path)
    return str(rel) if str(rel) != "." else f". ({root.name or root})"


def pick_one(root: Path, found: Sequence[Path], what: str, describe: Callable[[Path], str] | None = None) -> Path | None:
    """The one distinct path in ``found``; ``None`` when there is none.

    Raises:
        AmbiguousRootError: several distinct paths, listed (with ``describe(path)`` when given).
    """
    unique = distinct(found)
    if len(unique) > 1:
        listed = [shown(root, p) + (f" ({describe(p)})" if describe else "") for p in unique]
        raise AmbiguousRootError(root, what, listed)
    return unique[0] if unique else None


def find_one(root: Path, qualifies: Callable[[Path], bool], what: str, *, depth: int = 2, names: Sequence[str] = ()) -> Path | None:
    """The one folder at or below ``root`` (to ``depth``, plus ``root/<name>`` for ``names``) that ``qualifies``.

    Returns ``None`` when none does.

    Raises:
        AmbiguousRootError: several do.
    """
    candidates = folders_below(root, depth) + [root / n for n in names]
    return pick_one(root, [c for c in candidates if c.is_dir() and qualifies(c)], what)
