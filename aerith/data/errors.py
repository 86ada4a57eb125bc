"""Errors for bad data, and the raise-or-count policy loaders share.

Every loader reports a bad record through :class:`BadRecords`: with
``on_bad="raise"`` (the default) the first problem raises a :class:`RecordError`
naming the file, record and field; with ``on_bad="skip"`` the record is left
out, counted, and one :class:`SkippedRecordsWarning` with the count is issued
when the dataset has been indexed. Nothing is dropped silently.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

OnBad = Literal["raise", "skip"]


class DataError(ValueError):
    """Base class of every data problem Aerith reports."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A root folder or annotation file is missing."""

    def __init__(self, path: str | Path, expected: str) -> None:
        self.path = Path(path)
        self.expected = expected
        super().__init__(f"{self.path}: not found; expected {expected}")


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


class ImageReadError(DataError):
    """An image file is missing, unreadable or of a layout Aerith cannot use."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


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
