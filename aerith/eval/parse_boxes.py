"""Box parsing lives in :mod:`aerith.parsing.boxes` (inference uses it too); re-exported here."""

from aerith.parsing.boxes import FORMATS, parse_boxes

__all__ = ["FORMATS", "parse_boxes"]
