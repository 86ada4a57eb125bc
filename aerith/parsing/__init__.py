"""Reading model answers: boxes in the formats RS VLMs write, class names in free text.

Neutral ground: inference (``aerith.infer``) and evaluation (``aerith.eval``) both use it,
and it imports neither.
"""

from aerith.parsing.boxes import FORMATS, parse_boxes
from aerith.parsing.classes import MATCH_KINDS, match_class

__all__ = ["FORMATS", "MATCH_KINDS", "match_class", "parse_boxes"]
