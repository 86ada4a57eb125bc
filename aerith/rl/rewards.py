"""SCST rewards for RS captions: CIDEr-D, scene-graph F1, hallucinated and missing objects.

Each term is its own function of (caption, references); :class:`CaptionReward`
weighs them and returns every term per caption, so each can be logged::

    reward = w_cider * CIDEr-D + w_sg * SG-F1 - w_hal * hallucination_rate - w_miss * missing_rate

CIDEr-D uses document frequencies fitted once on the training references
(:class:`aerith.eval.CiderD`) and saved with the run, so a single caption
scores against them. SG-F1 and the object errors come from the one
scene-graph module the evaluation harness also uses
(:mod:`aerith.eval.scene_graph`). ``hallucination_rate`` is the share of the
caption's objects that no reference mentions; ``missing_rate`` the share of
objects named by at least half the references that the caption leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from aerith.eval.cider import CiderD
from aerith.eval.scene_graph import SceneGraph, SceneGraphParser, object_errors, sg_f1
from aerith.eval.scene_graph import parse as parse_scene_graph

TERMS = ("cider", "sg_f1", "hallucination", "missing")


@dataclass
class RewardWeights:
    cider: float = 1.0
    sg_f1: float = 0.5
    hallucination: float = 0.5
    missing: float = 0.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"reward weight {name} must be >= 0, got {value}")
        if not any(asdict(self).values()):
            raise ValueError("all reward weights are 0: nothing to optimise")


class CaptionReward:
    """Scores sampled captions against their references; reference graphs are parsed once per image.

    Args:
        cider: CIDEr-D fitted on the training references.
        weights: how the terms combine.
        parser: scene-graph parser (default: the built-in rule parser; see
            :func:`aerith.rl.factual.load_parser` for the optional FACTUAL one).
    """

    def __init__(self, cider: CiderD, weights: RewardWeights | None = None, parser: SceneGraphParser | None = None) -> None:
        self.cider = cider
        self.weights = weights or RewardWeights()
        self.parser = parser
        self._ref_graphs: dict[tuple[str, ...], list[SceneGraph]] = {}

    def _graphs(self, references: Sequence[str]) -> list[SceneGraph]:
        key = tuple(references)
        if key not in self._ref_graphs:
            self._ref_graphs[key] = [parse_scene_graph(r, self.parser) for r in references]
        return self._ref_graphs[key]

    def terms(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, list[float]]:
        """Every reward term per caption, plus ``total``: ``{"cider": [...], ..., "total": [...]}``."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} captions but {len(references)} reference lists")
        out: dict[str, list[float]] = {t: [] for t in (*TERMS, "total")}
        out["cider"] = self.cider.score_batch(list(candidates), [list(r) for r in references])
        w = self.weights
        for i, (cand, refs) in enumerate(zip(candidates, references)):
            graphs = self._graphs(refs)
            graph = parse_scene_graph(cand, self.parser)
            errors = object_errors(graph, graphs)
            out["sg_f1"].append(sg_f1(graph, graphs)["f1"])
            out["hallucination"].append(errors["hallucination_rate"])
            out["missing"].append(errors["missing_rate"])
            out["total"].append(
                w.cider * out["cider"][i]
                + w.sg_f1 * out["sg_f1"][i]
                - w.hallucination * out["hallucination"][i]
                - w.missing * out["missing"][i]
            )
        return out
