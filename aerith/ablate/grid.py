"""The variants ``aerith ablate`` trains: one factor changed at a time from the quickstart's recipe.

A :class:`Variant` lays its changes over the quickstart recipes
(``aerith/quickstart/recipes/``): AerithConfig fields of the starting model, the
coordinate-token start, SFT recipe overrides, and for the SCST factor the reward
weights. SCST variants start from the SFT model of the variant they name in
``scst_from`` (same seed), so reward mixes are compared on one SFT model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

BASELINE = "quickstart recipe"


@dataclass(frozen=True)
class Variant:
    """One row of the ablation.

    Attributes:
        name: unique, shown in the table.
        factor: what the row varies (``connector``, ``fusion`` ...); the baseline's factor is ``baseline``.
        model: AerithConfig overrides on top of ``recipes/model.yaml``.
        coordinate_init: ``fourier`` / ``random``; ``None``: the recipe's.
        sft: dotted SFT recipe overrides (``trainable=[...]``).
        rewards: SCST reward weights (``cider``, ``sg_f1``, ``hallucination``, ``missing``); ``None``: no SCST.
        scst_from: the variant whose SFT model SCST starts from (``None``: this variant trains its own SFT).
    """

    name: str
    factor: str
    model: Mapping[str, Any] = field(default_factory=dict)
    coordinate_init: str | None = None
    sft: tuple[str, ...] = ()
    rewards: Mapping[str, float] | None = None
    scst_from: str | None = None

    def __post_init__(self) -> None:
        if self.scst_from is not None and self.rewards is None:
            raise ValueError(f"variant {self.name!r}: scst_from needs rewards")
        if self.scst_from is not None and (self.model or self.coordinate_init or self.sft):
            raise ValueError(f"variant {self.name!r} reuses {self.scst_from!r}'s SFT model, so it cannot change the model or SFT")
        object.__setattr__(self, "model", MappingProxyType(dict(self.model)))

    @property
    def trains_sft(self) -> bool:
        return self.scst_from is None


CIDER_ONLY = {"cider": 1.0, "sg_f1": 0.0, "hallucination": 0.0, "missing": 0.0}


def _weights(factual: Mapping[str, float], *names: str) -> dict[str, float]:
    """The recipe's weights of ``names``, every other term of the reward table 0 (named, so that no table
    default slips in)."""
    from aerith.rl.rewards import REWARDS

    out = {n: 0.0 for n in REWARDS}
    for n in names:
        out[n] = float(factual.get(n) or REWARDS[n].weight or 1.0)  # a recipe without the term: its default
    return out


def reward_variants(factual: Mapping[str, float]) -> list[Variant]:
    """The SCST factor: CIDEr-D only, + SG-F1, + the penalties of the recipe (``factual``: its weights, the
    variant named after its penalties, e.g. "SCST: + hallucination, missing, repetition, unseen trigrams penalties").

    Each row adds only the terms it names to the row above, at the recipe's weights: the SG-F1 row weighs SG-F1
    as the recipe does, so the penalties row differs from it by the penalties alone.
    """
    from aerith.rl.rewards import REWARDS

    penalties = [n.replace("_", " ") for n, term in REWARDS.items() if term.penalty and factual.get(n, term.weight) > 0]
    return [
        Variant("SCST: CIDEr-D only", "SCST reward", rewards=_weights(factual, "cider"), scst_from=BASELINE),
        Variant("SCST: + SG-F1", "SCST reward", rewards=_weights(factual, "cider", "sg_f1"), scst_from=BASELINE),
        Variant(f"SCST: + {', '.join(penalties)} penalties", "SCST reward",
                rewards={**_weights(factual), **{n: float(w) for n, w in factual.items()}}, scst_from=BASELINE),
    ]


def full_grid(factual: Mapping[str, float], connector: str, num_queries: int) -> list[Variant]:
    """Every factor of issue 20 around the recipe (its ``connector`` and ``num_queries``).

    Pooler factors (locality prior, number of queries) are measured on the pooler:
    when the recipe's connector is the MLP, those rows switch to the pooler too and
    compare with the ``connector: pooler`` row.
    """
    other = "mlp" if connector == "pooler" else "pooler"
    pooler: dict[str, Any] = {} if connector == "pooler" else {"connector": "pooler"}
    prefix = "" if connector == "pooler" else "pooler, "
    return [
        Variant(BASELINE, "baseline"),
        Variant(f"connector: {other}", "connector", model={"connector": other}),
        Variant(f"{prefix}locality prior: off", "pooler locality prior", model={**pooler, "pooler_locality_prior": False}),
        Variant("fusion: concat", "fusion", model={"fusion": "concat"}),
        Variant("fusion: CLIP only", "fusion", model={"fusion": "clip"}),
        # DINOv3 alone computes no CLIP tokens, so a box head reads the (DINOv3) fused grid
        Variant("fusion: DINOv3 only", "fusion", model={"fusion": "dino", "box_head_input": "fused"}),
        Variant(f"{prefix}queries: {num_queries // 2}", "number of queries", model={**pooler, "num_queries": num_queries // 2}),
        Variant(f"{prefix}queries: {num_queries * 2}", "number of queries", model={**pooler, "num_queries": num_queries * 2}),
        Variant("coordinate tokens: random init", "coordinate-token init", coordinate_init="random"),
        *reward_variants(factual),
    ]


def quick_grid(factual: Mapping[str, float]) -> list[Variant]:
    """The smallest grid that exercises every path: the baseline, one model change, one SCST mix."""
    return [
        Variant(BASELINE, "baseline"),
        Variant("fusion: CLIP only", "fusion", model={"fusion": "clip"}),
        reward_variants(factual)[0],
    ]


def check_grid(variants: list[Variant]) -> None:
    """Names unique, every ``scst_from`` names an earlier variant that trains its own SFT."""
    seen: dict[str, Variant] = {}
    for v in variants:
        if v.name in seen:
            raise ValueError(f"two variants are named {v.name!r}")
        if v.scst_from is not None and (v.scst_from not in seen or not seen[v.scst_from].trains_sft):
            raise ValueError(f"variant {v.name!r}: scst_from {v.scst_from!r} is not an earlier variant with its own SFT")
        seen[v.name] = v
