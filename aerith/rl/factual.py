"""Optional FACTUAL scene-graph parser for the SCST reward (never needed offline).

The built-in rule parser (:class:`aerith.eval.scene_graph.RuleParser`) is the
default: deterministic, no model, thousands of captions per second. FACTUAL
(Li et al., ACL Findings 2023) is a Flan-T5 model fine-tuned to parse captions into
scene graphs; its ``factualscenegraph`` package (``pip install factualscenegraph``)
downloads the model ``lizhuang144/flan-t5-base-VG-factual-sg`` from the Hugging Face
hub on first use, so it needs the network once and a GPU to be fast. Select it in a
recipe with ``scst.parser: factual``.

The adapter maps FACTUAL's free-text entities to Aerith's canonical RS objects
through the rule parser's lexicon (``"oil tanks"`` -> ``storage tank``); entities the
lexicon does not know are kept as written (lower case), so they still count as
hallucinated when no reference mentions them. Attributes and relations keep
FACTUAL's words, with both ends mapped the same way.
"""

from __future__ import annotations

from typing import Any

from aerith.eval.scene_graph import DEFAULT_PARSER, SceneGraph, SceneGraphParser

FACTUAL_MODEL = "lizhuang144/flan-t5-base-VG-factual-sg"
INSTALL_HINT = (
    "scst.parser=factual needs the optional FACTUAL parser: pip install factualscenegraph "
    f"(it downloads {FACTUAL_MODEL} on first use); the default parser 'rule' needs nothing"
)


def _canonical(name: str) -> str:
    return DEFAULT_PARSER.head_object(name) or name.strip().lower()


class FactualParser:
    """A ``SceneGraphParser`` backed by FACTUAL.

    Args:
        parser: an object with FACTUAL's ``parse(texts, beam_size=..., return_text=False)``;
            ``None`` builds ``factual_scene_graph``'s ``SceneGraphParser(model, device)``.
        model / device: FACTUAL checkpoint and torch device, when ``parser`` is ``None``.
    Raises:
        ImportError: ``factualscenegraph`` is not installed (the message says how to install it).
    """

    def __init__(self, parser: Any = None, *, model: str = FACTUAL_MODEL, device: str = "cpu") -> None:
        if parser is None:
            try:
                from factual_scene_graph.parser.scene_graph_parser import SceneGraphParser as _Factual
            except ImportError as err:
                raise ImportError(INSTALL_HINT) from err
            parser = _Factual(model, device=device)
        self._parser = parser
        self._cache: dict[str, SceneGraph] = {}

    def parse(self, caption: str) -> SceneGraph:
        if caption not in self._cache:
            out = self._parser.parse([caption], beam_size=1, return_text=False)
            self._cache[caption] = self.to_scene_graph(out[0] if isinstance(out, list) else out)
        return self._cache[caption]

    @staticmethod
    def to_scene_graph(graph: dict[str, Any]) -> SceneGraph:
        """FACTUAL's ``{"entities": [{"head", "attributes"}], "relations": [{"subject", "relation", "object"}]}``."""
        # an entity without a head (None or blank in a malformed generation) is no object, and tuples on it
        # are left out too (they were ("", "white") and ("", "near", "road"), counted as wrong tuples)
        heads = [_canonical(str(e.get("head") or "")) for e in graph.get("entities", [])]
        attributes = {
            (heads[i], str(a).strip().lower())
            for i, e in enumerate(graph.get("entities", []))
            for a in (e.get("attributes") or ())
            if heads[i] and str(a).strip()
        }
        relations = set()
        for r in graph.get("relations", []):
            s, o = r.get("subject"), r.get("object")
            if isinstance(s, int) and isinstance(o, int) and 0 <= s < len(heads) and 0 <= o < len(heads):
                if heads[s] and heads[o]:
                    relations.add((heads[s], str(r.get("relation", "")).strip().lower(), heads[o]))
        return SceneGraph(frozenset(h for h in heads if h), frozenset(attributes), frozenset(relations))


def load_parser(name: str) -> SceneGraphParser | None:
    """``rule`` -> ``None`` (the built-in parser); ``factual`` -> :class:`FactualParser`."""
    if name == "rule":
        return None
    if name == "factual":
        return FactualParser()
    raise ValueError(f"unknown scene-graph parser {name!r}; valid: rule, factual")
