"""Answer parsers and metrics for evaluation (DESIGN §6) and SCST rewards (§4).

Pure functions and small classes; pycocoevalcap is imported only when captions are scored.
"""

from aerith.eval.captioning import caption_scores
from aerith.eval.cider import CiderD
from aerith.eval.classification import classification_scores
from aerith.eval.grounding import grounding_scores
from aerith.eval.scene_graph import SceneGraph, SceneGraphParser, object_errors, sg_f1
from aerith.eval.scene_graph import parse as parse_scene_graph
from aerith.eval.vqa import vqa_scores
from aerith.parsing import match_class, parse_boxes  # answer parsing, shared with inference

__all__ = [
    "CiderD",
    "SceneGraph",
    "SceneGraphParser",
    "caption_scores",
    "classification_scores",
    "grounding_scores",
    "match_class",
    "object_errors",
    "parse_boxes",
    "parse_scene_graph",
    "sg_f1",
    "vqa_scores",
]
