"""Errors for bad data, and the raise-or-count policy loaders share.

Every loader reports a bad record through :class:`BadRecords`: with
``on_bad="raise"`` (the default) the first problem raises a :class:`RecordError`
naming the file, record and field; with ``on_bad="skip"`` the record is left
out, counted, and one :class:`SkippedRecordsWarning` with the count is issued
when the dataset has been indexed. Nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from aerith.errors import DataError, ImageReadError

OnBad = Literal["raise", "skip"]


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A root folder or annotation file is missing."""

    def __init__(self, path: str | Path, expected: str) -> None:
        self.path = Path(path)
        self.expected = expected
        super().__init__(f"{self.path}: not found; expected {expected}")


class AmbiguousRootError(DataError):
    """A root folder holds several candidates for one dataset: refused, listing them."""

    def __init__(self, root: str | Path, what: str, candidates: Sequence[str]) -> None:
        self.root = Path(root)
        self.candidates = list(candidates)
        listed = "; ".join(self.candidates)
        super().__init__(
            f"{self.root}: ambiguous root: it holds {len(self.candidates)} candidates for {what}: {listed}. "
            "Pass the folder of the one you mean as the root"
        )


ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".rar", ".7z")


def archive_hint(folder: str | Path) -> str:
    """``"; <folder> holds X.zip: extract it first ..."`` when ``folder`` holds archives, else ``""``.

    Added to "not found" errors: a download folder holding only the dataset's
    archive is the usual reason a loader finds nothing there.
    """
    folder = Path(folder)
    if folder.is_file():
        archives = [folder] if folder.name.lower().endswith(ARCHIVE_SUFFIXES) else []
    elif folder.is_dir():
        archives = sorted(p for p in folder.iterdir() if p.is_file() and p.name.lower().endswith(ARCHIVE_SUFFIXES))
    else:
        archives = []
    if not archives:
        return ""
    names = ", ".join(p.name for p in archives[:3]) + (f" and {len(archives) - 3} more" if len(archives) > 3 else "")
    where = archives[0].parent
    return (
        f"; {where} holds the archive(s) {names}, not extracted: extract {'it' if len(archives) == 1 else 'them'} first "
        f"(e.g. {extract_command(archives[0])}) and pass {where} or the extracted folder"
    )


def extract_command(archive: Path) -> str:
    """The shell command that extracts ``archive`` beside itself."""
    name, where = archive.name, archive.parent
    lower = name.lower()
    if lower.endswith(".zip"):
        return f"unzip '{name}' -d '{where}'"
    if lower.endswith((".rar", ".7z")):
        return f"7z x '{name}' -o'{where}'"
    return f"tar -xf '{name}' -C '{where}'"


class RecordError(DataError):
    """One record is malformed: names the file, the record and the field."""

    def __init__(self, file: str | Path, record: object, field: str | None, message: str) -> None:
        self.file = Path(file)
        self.record = record
        self.field = field
        self.message = message
        where = f"{self.file}: record {record!r}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class SkippedRecordsWarning(UserWarning):
    """Records were skipped because the user asked for ``on_bad="skip"``."""


class BadRecords:
    """Raise on the first bad record, or count and skip them.

    Example::

        bad = BadRecords(on_bad, source="RSVQA-LR test")
        for rec in records:
            try:
                samples.append(parse(rec))
            except RecordError as err:
                bad.handle(err)
        bad.finish()
    """

    def __init__(self, on_bad: OnBad = "raise", source: str = "dataset") -> None:
        if on_bad not in ("raise", "skip"):
            raise ValueError(f"on_bad must be 'raise' or 'skip', got {on_bad!r}")
        self.on_bad = on_bad
        self.source = source
        self.skipped: list[RecordError] = []

    @property
    def count(self) -> int:
        return len(self.skipped)

    def handle(self, err: RecordError) -> None:
        if self.on_bad == "raise":
            raise err
        self.skipped.append(err)

    def finish(self) -> None:
        """Issue one warning with the number of skipped records, if any."""
        if self.skipped:
            first = "; ".join(str(e) for e in self.skipped[:3])
            warnings.warn(
                f"{self.source}: skipped {self.count} bad record(s) (on_bad='skip'). First: {first}",
                SkippedRecordsWarning,
                stacklevel=3,
            )
