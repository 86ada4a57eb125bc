"""SynthRS: procedural remote-sensing scenes with known scene graphs, in the real datasets' formats.

The offline corpus of Aerith: every object, attribute and relation of a scene
is known, and the class label, captions, RSVQA questions and referring
expressions are derived from that graph. :func:`generate` writes a set in the
native formats of UCM, DIOR-RSVG, RSVQA-LR and RSICD (see
:mod:`aerith.data.synthrs.writers`); ``load_dataset("synthrs", root, split,
task=...)`` reads it back through those datasets' loaders.

Modules: ``scene`` (vocabulary and graph), ``render`` (drawing), ``grounds``
(land cover per class), ``layout`` (classes, object placement, relations),
``language`` (captions, questions, expressions), ``writers`` (formats),
``card`` (dataset card), ``generate`` (the whole run).
"""

from aerith.data.synthrs.generate import GENERATOR_VERSION, SPLIT_RATIOS, GenerateSummary, generate
from aerith.data.synthrs.language import QUESTION_TYPES, Query, matches, truth_tuples
from aerith.data.synthrs.layout import CLASS_NAMES, SCENE_CLASSES, make_scene
from aerith.data.synthrs.scene import CATEGORIES, COLOURS, RELATIONS, SceneGraph, SceneObject

__all__ = [
    "CATEGORIES",
    "CLASS_NAMES",
    "COLOURS",
    "GENERATOR_VERSION",
    "QUESTION_TYPES",
    "RELATIONS",
    "SCENE_CLASSES",
    "SPLIT_RATIOS",
    "GenerateSummary",
    "Query",
    "SceneGraph",
    "SceneObject",
    "generate",
    "make_scene",
    "matches",
    "truth_tuples",
]
