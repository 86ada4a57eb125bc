"""Errors for bad input data that every layer may raise (images are read by models, data and serving alike).

:mod:`aerith.data.errors` adds the loaders' record errors and the raise-or-count policy.
"""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Base class of every data problem Aerith reports."""


class ImageReadError(DataError):
    """An image file is missing, unreadable or of a layout Aerith cannot use."""

    def __init__(self, path: str | Path, message: str) -> None:
        self.path = Path(path)
        super().__init__(f"{self.path}: {message}")


__all__ = ["DataError", "ImageReadError"]
