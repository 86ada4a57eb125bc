"""SCST rewards for RS captions, as a table of functions (trl's ``reward_funcs`` + ``reward_weights``).

Each term is one function of a :class:`RewardBatch` (captions, their references and
what the terms share) returning one score per caption, and one entry of
:data:`REWARDS` with its default weight and whether it is a penalty.
:class:`CaptionReward` weighs every term of the table and returns each per caption,
so each can be logged::

    reward = sum(weight * score for rewards) - sum(weight * score for penalties)
           = w_cider * CIDEr-D + w_sg * SG-F1 - w_hal * hallucination_rate - w_miss * missing_rate
             - w_rep * repetition_rate - w_unseen * unseen_trigrams

Adding a reward is one function and one table entry: the recipe's ``scst.rewards``
defaults, the accepted keys and the error messages come from the table, and the
training logs the new term as ``reward_<name>`` (``val_<name>`` in validation).

CIDEr-D uses document frequencies fitted once on the training references
(:class:`aerith.eval.CiderD`) and saved with the run, so a single caption
scores against them. SG-F1 and the object errors come from the one
scene-graph module the evaluation harness also uses
(:mod:`aerith.eval.scene_graph`). ``hallucination_rate`` is the share of the
caption's objects that no reference mentions (0 for a caption that names none: as a
reward term it costs nothing, while CIDEr-D, SG-F1 and the missing rate still score the
caption; the evaluation reports such a rate as undefined); ``missing_rate`` the share of
objects named by at least half the references that the caption leaves out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aerith.eval.cider import CiderD, tokenize
from aerith.eval.scene_graph import SceneGraph, SceneGraphParser, object_errors, sg_f1
from aerith.eval.scene_graph import parse as parse_scene_graph


class RewardBatch:
    """Captions and their references, with what several terms share computed once (lazily).

    Args:
        captions: the sampled captions.
        references: one list of reference captions per caption.
        cider: CIDEr-D fitted on the training references.
        parse: caption -> scene graph.
        reference_graphs: references -> their scene graphs (cached by :class:`CaptionReward` per image).
    """

    def __init__(
        self,
        captions: Sequence[str],
        references: Sequence[Sequence[str]],
        cider: CiderD,
        parse: Callable[[str], SceneGraph],
        reference_graphs: Callable[[Sequence[str]], list[SceneGraph]],
    ) -> None:
        self.captions = list(captions)
        self.references = [list(r) for r in references]
        self.cider = cider
        self._parse = parse
        self._reference_graphs = reference_graphs

    @cached_property
    def caption_graphs(self) -> list[SceneGraph]:
        return [self._parse(c) for c in self.captions]

    @cached_property
    def reference_graphs(self) -> list[list[SceneGraph]]:
        return [self._reference_graphs(r) for r in self.references]

    @cached_property
    def object_errors(self) -> list[dict[str, float]]:
        return [object_errors(g, refs) for g, refs in zip(self.caption_graphs, self.reference_graphs, strict=True)]


# -- the terms: (batch) -> one score per caption ----------------------------------------------------------
def cider_d(batch: RewardBatch) -> list[float]:
    """CIDEr-D of each caption against its references (document frequencies of the training references)."""
    return batch.cider.score_batch(batch.captions, batch.references)


def scene_graph_f1(batch: RewardBatch) -> list[float]:
    """F1 of the caption's scene-graph tuples against the references' (SG-F1; not SPICE)."""
    return [sg_f1(g, refs)["f1"] for g, refs in zip(batch.caption_graphs, batch.reference_graphs, strict=True)]


def hallucination_rate(batch: RewardBatch) -> list[float]:
    """Share of the caption's objects that no reference mentions."""
    return [e["hallucination_rate"] for e in batch.object_errors]


def missing_rate(batch: RewardBatch) -> list[float]:
    """Share of the objects named by at least half the references that the caption leaves out."""
    return [e["missing_rate"] for e in batch.object_errors]


def repetition_rate(batch: RewardBatch) -> list[float]:
    """Share of the caption's word bigrams that repeat an earlier bigram of the same caption.

    Sampling already blocks repeated trigrams, so a policy can still loop on bigrams
    ("a harbor with a harbor with ...") that CIDEr-D's clipping only half punishes.
    """
    return [repeated_bigram_share(c) for c in batch.captions]


def repeated_bigram_share(caption: str) -> float:
    """Repeated word bigrams / word bigrams of ``caption`` (case-insensitive; 0.0 below two words)."""
    words = re.findall(r"[a-z0-9]+", caption.lower())
    bigrams = list(zip(words, words[1:]))
    return (len(bigrams) - len(set(bigrams))) / len(bigrams) if bigrams else 0.0


def unseen_trigrams(batch: RewardBatch) -> list[float]:
    """How many of the caption's word trigrams no training reference contains.

    A fluency guard that needs no grammar: reward hacking writes word sequences no annotator
    wrote ("a small white building is at the river": the scene noun pasted where a position
    belongs earns more CIDEr-D than the position it replaced, about +1 on a river scene). A
    count, not a share, so that one pasted word costs the whole weight whatever the caption's
    length. The trigrams are those of CIDEr-D's document frequencies, so they come from the
    training references and are saved with the run. On real datasets good captions also hold
    unseen trigrams: give it a small weight there.
    """
    if batch.cider.n < 3:
        raise ValueError(f"unseen_trigrams needs CIDEr-D document frequencies up to trigrams, these stop at n={batch.cider.n}")
    df = batch.cider.df
    out = []
    for caption in batch.captions:
        words = tokenize(caption)
        out.append(float(sum(1 for i in range(len(words) - 2) if tuple(words[i : i + 3]) not in df)))
    return out


@dataclass(frozen=True)
class RewardTerm:
    """One row of the reward table.

    Attributes:
        fn: ``(RewardBatch) -> list[float]``, one score per caption.
        weight: the default weight (a recipe's ``scst.rewards`` overrides it; 0: computed and logged only).
        penalty: subtracted from the reward instead of added.
    """

    fn: Callable[[RewardBatch], list[float]]
    weight: float
    penalty: bool = False


REWARDS: dict[str, RewardTerm] = {
    "cider": RewardTerm(cider_d, weight=1.0),
    "sg_f1": RewardTerm(scene_graph_f1, weight=0.5),
    "hallucination": RewardTerm(hallucination_rate, weight=0.5, penalty=True),
    "missing": RewardTerm(missing_rate, weight=0.0, penalty=True),
    "repetition": RewardTerm(repetition_rate, weight=0.0, penalty=True),
    "unseen_trigrams": RewardTerm(unseen_trigrams, weight=0.0, penalty=True),
}
TERMS = tuple(REWARDS)  # the table's names as it was imported; code that must see later entries reads REWARDS


def default_weights() -> dict[str, float]:
    """Every term's default weight, in table order."""
    return {name: term.weight for name, term in REWARDS.items()}


def check_weights(weights: Mapping[str, Any] | None) -> dict[str, float]:
    """The given weights over the table's defaults, as floats in table order.

    Raises:
        ValueError: an unknown term (the message lists the valid ones), a weight that is not a finite
            number >= 0, or every weight 0.
    """
    given = dict(weights or {})
    unknown = sorted(str(k) for k in given if k not in REWARDS)
    if unknown:
        raise ValueError(f"unknown reward term(s) {unknown}; valid terms: {', '.join(REWARDS)}")
    out = default_weights()
    for name, value in given.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"reward weight {name} must be a finite number >= 0, got {value!r}")
        if value < 0:
            raise ValueError(f"reward weight {name} must be >= 0, got {value}")
        out[name] = float(value)
    if not any(out.values()):
        raise ValueError("all reward weights are 0: nothing to optimise")
    return out


class CaptionReward:
    """Scores sampled captions against their references with every term of :data:`REWARDS`.

    Reference graphs are parsed once per image (cached by the references' text).

    Args:
        cider: CIDEr-D fitted on the training references.
        weights: term -> weight (missing terms take the table's default); see :func:`check_weights`.
        parser: scene-graph parser (default: the built-in rule parser; see
            :func:`aerith.rl.factual.load_parser` for the optional FACTUAL one).
    """

    def __init__(self, cider: CiderD, weights: Mapping[str, float] | None = None, parser: SceneGraphParser | None = None) -> None:
        self.cider = cider
        self.weights = check_weights(weights)
        self.parser = parser
        self._ref_graphs: dict[tuple[str, ...], list[SceneGraph]] = {}

    def _graphs(self, references: Sequence[str]) -> list[SceneGraph]:
        key = tuple(references)
        if key not in self._ref_graphs:
            self._ref_graphs[key] = [parse_scene_graph(r, self.parser) for r in references]
        return self._ref_graphs[key]

    def terms(self, candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict[str, list[float]]:
        """Every term per caption, plus ``total``: ``{"cider": [...], ..., "total": [...]}``."""
        if len(candidates) != len(references):
            raise ValueError(f"{len(candidates)} captions but {len(references)} reference lists")
        for i, refs in enumerate(references):
            if isinstance(refs, str):  # would be read as a list of one-character captions
                raise TypeError(f"references[{i}] is a string; pass a list of reference captions per caption")
        batch = RewardBatch(candidates, references, self.cider, lambda c: parse_scene_graph(c, self.parser), self._graphs)
        out = {name: list(term.fn(batch)) for name, term in REWARDS.items()}
        total = [0.0] * len(candidates)
        for name, term in REWARDS.items():
            w = -self.weights[name] if term.penalty else self.weights[name]
            total = [t + w * v for t, v in zip(total, out[name], strict=True)]
        out["total"] = total
        return out
