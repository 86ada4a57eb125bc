"""Reading the plain-text files of a dataset (split lists, line annotations)."""

from __future__ import annotations

from pathlib import Path

from aerith.data.errors import RecordError


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark dropped).

    Raises:
        RecordError: the file is not UTF-8 text (a Latin-1 list, or an image
            passed for a split file); names the line of the first bad byte.
    """
    raw = Path(path).read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        byte = raw[err.start]
        raise RecordError(path, f"line {line}", None, f"not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8, or check that this is the right file") from None
