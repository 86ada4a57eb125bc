"""Per-image generation latency: AerithVLM's two connectors, and transformers' LLaVA-1.5 beside them.

``connector: pooler`` (the seed) pools CLIP + DINOv3 patches into a fixed number
of queries (144 in the seed); ``connector: mlp`` is LLaVA-1.5's projector inside
Aerith (two linear layers with GELU over every fused patch, 256 tokens at 224 px,
576 at 336 px). Same towers, same language model, one field changed. transformers'
own ``LlavaForConditionalGeneration`` (CLIP only, same LM) is timed too, as the
reference the MLP connector replaces. All random-init, so ratios measure
architecture, not weights. Greedy decoding of exactly ``new_tokens`` tokens,
batch 1, median of ``repeats``.

Run: ``python benchmarks/bench_model_latency.py``.
"""

from __future__ import annotations

import os
import statistics
import time

import torch
from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration

from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.presets import get_preset

PROMPT_TOKENS = 24


def _sizes() -> dict[str, AerithConfig]:
    tiny = get_preset("aerith-tiny").make_config()
    mid = AerithConfig(  # about 100M parameters
        clip_config=dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6, patch_size=14, image_size=224),
        dino_config=dict(hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=6, patch_size=16, image_size=224, num_register_tokens=4),
        text_config=dict(model_type="llama", hidden_size=768, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=12, num_key_value_heads=12, vocab_size=32002, tie_word_embeddings=False),
        fusion_dim=384, num_queries=144, pooler_layers=2, pooler_heads=6, image_token_id=32000,
    )
    return {"tiny": tiny, "~100M": mid}


def _llava_like(cfg: AerithConfig) -> LlavaForConditionalGeneration:
    vision = CLIPVisionConfig(**{k: getattr(cfg.clip_config, k) for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size", "image_size")})
    llava_cfg = LlavaConfig(
        vision_config=vision,
        text_config=cfg.text_config.to_dict(),
        image_token_index=cfg.image_token_id,
        image_seq_length=cfg.clip_grid**2,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    return LlavaForConditionalGeneration(llava_cfg).eval()


def _time_generate(model, inputs: dict, new_tokens: int, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(new_tokens: int = 32, repeats: int = 5) -> dict:
    torch.manual_seed(0)
    rows = []
    for label, cfg in _sizes().items():
        aerith = AerithForConditionalGeneration(cfg).eval()
        mlp = AerithForConditionalGeneration(AerithConfig(**{**cfg.to_dict(), "connector": "mlp"})).eval()
        llava = _llava_like(cfg)
        q, patches = cfg.num_queries, cfg.clip_grid**2
        text = torch.randint(10, 1000, (1, PROMPT_TOKENS))
        img = lambda n: torch.full((1, n), cfg.image_token_id)  # noqa: E731
        clip_px = torch.randn(1, 3, cfg.clip_config.image_size, cfg.clip_config.image_size)
        dino_px = torch.randn(1, 3, cfg.dino_config.image_size, cfg.dino_config.image_size)
        a_in = {"input_ids": torch.cat([img(q), text], 1), "pixel_values": clip_px, "dino_pixel_values": dino_px}
        l_in = {"input_ids": torch.cat([img(patches), text], 1), "pixel_values": clip_px}
        m_in = {**a_in, "input_ids": torch.cat([img(patches), text], 1)}
        a_s = _time_generate(aerith, a_in, new_tokens, repeats)
        m_s = _time_generate(mlp, m_in, new_tokens, repeats)
        l_s = _time_generate(llava, l_in, new_tokens, repeats)
        rows.append(
            {
                "size": label,
                "aerith_params_M": sum(p.numel() for p in aerith.parameters()) / 1e6,
                "mlp_params_M": sum(p.numel() for p in mlp.parameters()) / 1e6,
                "llava_params_M": sum(p.numel() for p in llava.parameters()) / 1e6,
                "aerith_visual_tokens": q,
                "llava_visual_tokens": patches,
                "aerith_s_per_image": a_s,
                "mlp_s_per_image": m_s,
                "llava_s_per_image": l_s,
                "ratio_pooler_over_mlp": a_s / m_s,
                "ratio_aerith_over_llava": a_s / l_s,
            }
        )
    seed = AerithConfig()
    return {
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "unset"),
        "new_tokens": new_tokens,
        "rows": rows,
        "visual_tokens_seed": {
            "aerith (any input size)": seed.num_queries,
            "llava-1.5 @224px": (224 // 14) ** 2,
            "llava-1.5 @336px": (336 // 14) ** 2,
        },
    }


def to_markdown(result: dict) -> str:
    lines = [
        f"Greedy generation of {result['new_tokens']} tokens, batch 1, CPU, median of repeats "
        f"(OMP_WAIT_POLICY={result.get('omp_wait_policy', 'unset')}: spinning OpenMP threads made the tiny "
        "rows 20x slower whenever anything else ran).",
        "",
        "| size | params (M) pooler / mlp / LLaVA | visual tokens pooler / mlp | pooler s/image | mlp s/image | "
        "transformers LLaVA s/image | ratio pooler/mlp | ratio pooler/LLaVA |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['size']} | {r['aerith_params_M']:.1f} / {r['mlp_params_M']:.1f} / {r['llava_params_M']:.1f} "
            f"| {r['aerith_visual_tokens']} / {r['llava_visual_tokens']} | {r['aerith_s_per_image']:.3f} "
            f"| {r['mlp_s_per_image']:.3f} | {r['llava_s_per_image']:.3f} | {r['ratio_pooler_over_mlp']:.2f} "
            f"| {r['ratio_aerith_over_llava']:.2f} |"
        )
    lines += [
        "",
        "pooler and mlp are the same Aerith model with `connector` changed (the mlp keeps the DINOv3 tower, so it",
        "costs a little more than transformers' CLIP-only LLaVA); at toy widths the towers cost as much as the",
        "visual tokens save. Real-width costs are in the `cost` section where measured.",
    ]
    lines += ["", "Visual tokens fed to the LLM at the seed size: " + ", ".join(f"{k}: {v}" for k, v in result["visual_tokens_seed"].items())]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run()))
