"""The FLOP count of benchmarks/bench_cost.py agrees with its closed form; the KV-cache formula with a real cache."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_cost.py"


@pytest.fixture(scope="module")
def cost():
    spec = importlib.util.spec_from_file_location("bench_cost", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _variants(cost):
    from aerith.models.presets import get_preset

    out = dict(cost.designs())
    sat = get_preset("aerith-7b-sat").make_config()  # DINOv3 ViT-L/16 tower
    sat.fusion = "concat"
    sat.num_queries = 64
    out["aerith-7b-sat, concat, 64 queries"] = sat
    return out


def test_counted_prefill_flops_match_the_closed_form(cost):
    counted = {}
    for name, config in _variants(cost).items():
        c, f = cost.counted_prefill_flops(config), cost.closed_form_prefill_flops(config)
        for part in ("vision", "llm", "total"):
            assert f[part] == pytest.approx(c[part], rel=0.10), (name, part, f[part] / c[part])
        counted[name] = c["total"]
    # 144 pooled tokens against 576 patch tokens through the same 7B LLM: about 0.3x the prefill
    ratio = counted["aerith-7b"] / counted["mlp-336"]
    assert 0.25 < ratio < 0.35, ratio


def test_kv_cache_formula_matches_a_generated_cache(cost):
    from aerith.infer.load import load_vlm

    vlm = load_vlm("aerith-tiny", seed=0, device="cpu")
    config = vlm.model.config
    inputs = cost._inputs(config, text_tokens=8, seed=0)  # BOS and 7 more
    with torch.inference_mode():
        _, nbytes, _ = cost._generate(vlm.model, inputs, 5)
    # the cache holds every position but the last generated token's (its keys are never needed)
    assert nbytes == cost.kv_cache_bytes(config, 5 - 1, text_tokens=8, dtype_bytes=4)
