"""Answer parsers and metrics for evaluation (DESIGN §6) and SCST rewards (§4)."""

from aerith.eval.classification import classification_scores, match_class
from aerith.eval.grounding import grounding_scores
from aerith.eval.parse_boxes import parse_boxes
from aerith.eval.vqa import vqa_scores

__all__ = [
    "classification_scores",
    "grounding_scores",
    "match_class",
    "parse_boxes",
    "vqa_scores",
]
