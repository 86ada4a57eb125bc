"""Real-size cost: aerith-7b (144 pooled tokens) against the same LLM with the LLaVA-1.5 MLP over CLIP-L/14 at 336 px (576 tokens).

Three measures, each for both designs:

(a) **Prefill FLOPs** of one image and its prompt, counted by ``torch.utils.flop_counter.FlopCounterMode``
    on the full-size models built on the meta device (every layer, no memory, no weights), and a
    closed-form count from the configs (:func:`closed_form_prefill_flops`) that checks it. Both count
    the matrix products (linear layers, convolutions, attention), 2 FLOPs per multiply-add; attention
    is counted over the full square score matrix, as the counter does for
    ``scaled_dot_product_attention`` even when it is causal.
(b) **Latency per image** (CPU seconds of one thread) at real width: hidden size 4096, the real towers
    (CLIP ViT-L/14, DINOv3 ViT-B/16, all their layers), the real connectors, random weights, float32,
    but ``LLM_LAYERS`` of Llama-2-7B's 32 decoder layers. Greedy generation of a short answer
    (``SHORT`` tokens) and of a 60-token caption, batch 1. The two designs alternate over ``ROUNDS``
    rounds and the median is reported; the ratio is from the same run. The 32-layer figure is an
    extrapolation: the same run times ``LLM_LAYERS`` and ``LLM_LAYERS - 1`` layers (the same
    weights, one layer dropped), and adds the difference for each missing layer.
(c) **KV cache per request**: bytes of keys and values held for one image's prompt and answer in
    bf16 over all 32 layers: the closed form ``2 x layers x kv_heads x head_dim x tokens x 2 bytes``,
    checked against the cache a real-width generation leaves (measured per layer, scaled).

Both designs keep Aerith's fused towers (CLIP + DINOv3, DINOv3 at 224 px); LLaVA-1.5 itself has no
DINOv3 (its DINOv3 share is listed). The prompt around the image is ``TEXT_TOKENS`` tokens.

Run: ``python benchmarks/bench_cost.py`` (about 12 minutes on 2 busy CPU cores, peak memory 7.5 GiB),
or ``python benchmarks/bench_cost.py --flops-only`` for (a) and (c) in seconds.
"""

from __future__ import annotations

import gc
import os
import statistics
import sys
import time
from typing import Any

import torch

TEXT_TOKENS = 32  # "[INST] <image>\n[CAP] Describe this image. [/INST]" and the like, in Llama tokens
SHORT = 4  # new tokens of a short answer (a class name, yes/no, a count)
CAPTION = 60  # new tokens of a caption
LLM_LAYERS = 2
ROUNDS = 3
BF16 = 2


# -- the two designs ----------------------------------------------------------------------------


def designs() -> dict[str, Any]:
    """``{"aerith-7b": config, "mlp-336": config}``: the seed, and the same LLM and towers with the LLaVA-1.5 MLP over CLIP @336 px."""
    from aerith.models.presets import get_preset

    seed = get_preset("aerith-7b").make_config()
    mlp = get_preset("aerith-7b").make_config()
    mlp.connector = "mlp"
    mlp.clip_config.image_size = 336
    return {"aerith-7b": seed, "mlp-336": mlp}


def prompt_tokens(config: Any, text_tokens: int = TEXT_TOKENS) -> int:
    return config.num_image_tokens + text_tokens


# -- (a) FLOPs ----------------------------------------------------------------------------------


def counted_prefill_flops(config: Any, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """FLOPs of one prefill, counted by FlopCounterMode on the model built on the meta device.

    Returns:
        ``{"vision": towers + fusion + connector, "llm": the language model over the prompt
        (logits of the last position only, as generation computes them), "total"}``.
    """
    from torch.utils.flop_counter import FlopCounterMode

    from aerith.models.modeling_aerith import AerithForConditionalGeneration

    with torch.device("meta"):
        model = AerithForConditionalGeneration(config).eval()
        clip_px = torch.empty(1, 3, config.clip_config.image_size, config.clip_config.image_size)
        dino_px = torch.empty(1, 3, config.dino_config.image_size, config.dino_config.image_size)
        embeds = torch.empty(1, prompt_tokens(config, text_tokens), config.text_config.hidden_size)
    # not under no_grad: FlopCounterMode's module tracker fails there; meta tensors cost nothing either way
    with FlopCounterMode(display=False) as vision:
        features = model.get_image_features(clip_px, dino_px)
    if features.shape[1] != config.num_image_tokens:
        raise RuntimeError(f"{features.shape[1]} image tokens, expected {config.num_image_tokens}")
    with FlopCounterMode(display=False) as llm:
        model.language_model(inputs_embeds=embeds, logits_to_keep=1)
    v, t = float(vision.get_total_flops()), float(llm.get_total_flops())
    return {"vision": v, "llm": t, "total": v + t}


def _vit_flops(cfg: Any, tokens: int, patch_tokens: int) -> float:
    """A ViT encoder over ``tokens`` tokens: patch embedding, every layer (attention over all tokens, MLP)."""
    d, m = cfg.hidden_size, cfg.intermediate_size
    patch = 2 * patch_tokens * 3 * cfg.patch_size**2 * d
    mlp = 2 * tokens * d * m * (3 if getattr(cfg, "use_gated_mlp", False) else 2)
    layer = 2 * tokens * 4 * d * d + 4 * tokens * tokens * d + mlp
    return patch + cfg.num_hidden_layers * layer


def closed_form_prefill_flops(config: Any, text_tokens: int = TEXT_TOKENS) -> dict[str, float]:
    """The same count from the configs' shapes alone (see the module docstring for the convention).

    Returns:
        ``{"clip", "dino", "fusion", "connector", "vision", "llm", "total"}``.
    """
    clip, dino, text = config.clip_config, config.dino_config, config.text_config
    grid = config.clip_grid**2
    dim = config.fusion_dim
    out: dict[str, float] = {}
    out["clip"] = _vit_flops(clip, grid + 1, grid)
    dino_grid = config.dino_grid**2
    out["dino"] = _vit_flops(dino, dino_grid + config.dino_prefix_tokens, dino_grid)
    out["fusion"] = 2 * grid * dim * (clip.hidden_size + dino.hidden_size) * config.num_levels
    if config.fusion == "concat":
        out["fusion"] += 2 * grid * 2 * dim * dim * config.num_levels
    width = text.hidden_size
    if config.connector == "pooler":
        q, n = config.num_queries, grid * config.num_levels
        hidden = int(dim * config.pooler_mlp_ratio)
        layer = 2 * q * dim * dim * 2 + 2 * n * dim * dim * 2 + 4 * q * n * dim + 2 * q * dim * hidden * 2
        out["connector"] = config.pooler_layers * layer + 2 * q * dim * width
    else:
        out["connector"] = 2 * grid * (dim * width + width * width)
    t = prompt_tokens(config, text_tokens)
    heads, kv = text.num_attention_heads, text.num_key_value_heads
    head_dim = getattr(text, "head_dim", None) or width // heads
    projections = 2 * t * width * head_dim * (2 * heads + 2 * kv)  # q and o, k and v
    attention = 4 * t * t * heads * head_dim
    mlp = 2 * t * width * text.intermediate_size * 3  # gate, up, down
    out["llm"] = text.num_hidden_layers * (projections + attention + mlp) + 2 * width * text.vocab_size
    out["vision"] = out["clip"] + out["dino"] + out["fusion"] + out["connector"]
    out["total"] = out["vision"] + out["llm"]
    return out


# -- (c) KV cache -------------------------------------------------------------------------------


def kv_cache_bytes(config: Any, new_tokens: int, text_tokens: int = TEXT_TOKENS, dtype_bytes: int = BF16) -> int:
    """Keys and values held for one request: the prompt (image tokens + text) and the generated tokens."""
    text = config.text_config
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    tokens = prompt_tokens(config, text_tokens) + new_tokens
    return 2 * text.num_hidden_layers * text.num_key_value_heads * head_dim * tokens * dtype_bytes


def _cache_tensor_bytes(cache: Any) -> int:
    """Bytes of the key and value tensors of a transformers cache (any layout)."""
    total = 0
    for layer in getattr(cache, "layers", []):
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if isinstance(t, torch.Tensor):
                total += t.numel() * t.element_size()
    return total


# -- (b) latency --------------------------------------------------------------------------------


def _real_width(config: Any, layers: int) -> Any:
    cfg = type(config)(**config.to_dict())
    cfg.text_config.num_hidden_layers = layers
    return cfg


def _inputs(config: Any, text_tokens: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    vocab = config.image_token_id  # ordinary tokens below the added ones
    text = torch.randint(3, vocab, (text_tokens - 1,), generator=g)  # after the BOS token
    ids = torch.cat([torch.tensor([1]), torch.full((config.num_image_tokens,), config.image_token_id), text]).unsqueeze(0)
    size_c, size_d = config.clip_config.image_size, config.dino_config.image_size
    return {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(1, 3, size_c, size_c, generator=g),
        "dino_pixel_values": torch.randn(1, 3, size_d, size_d, generator=g),
    }


def _generate(model: Any, inputs: dict[str, torch.Tensor], new_tokens: int) -> tuple[float, int, float]:
    """One greedy generation of exactly ``new_tokens`` tokens.

    Returns:
        ``(CPU seconds of this process, bytes of the cache it left, wall seconds)``.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    out = model.generate(
        **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
        pad_token_id=0, eos_token_id=2, return_dict_in_generate=True,
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if out.sequences.shape[1] - inputs["input_ids"].shape[1] != new_tokens:
        raise RuntimeError("generation did not produce the asked number of tokens")
    cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
    return cpu, _cache_tensor_bytes(cache), wall


def measure_latency(rounds: int = ROUNDS, layers: int = LLM_LAYERS, text_tokens: int = TEXT_TOKENS) -> dict[str, Any]:
    """Median CPU seconds per image (one thread) of both designs at real width, ``layers`` and ``layers - 1`` LLM layers.

    The two models share one language model and one DINOv3 tower (same shapes), so memory holds
    one LLM; CLIP is built twice (224 and 336 px).
    """
    from aerith.models.modeling_aerith import AerithForConditionalGeneration

    load_before = os.getloadavg()[0]
    configs = {name: _real_width(cfg, layers) for name, cfg in designs().items()}
    torch.manual_seed(0)
    models: dict[str, Any] = {}
    with torch.no_grad():
        models["aerith-7b"] = AerithForConditionalGeneration(configs["aerith-7b"]).eval()
        # built with a one-layer, narrow-MLP stand-in language model that is then replaced by the shared one
        stand_in = type(configs["mlp-336"])(**configs["mlp-336"].to_dict())
        stand_in.text_config.num_hidden_layers, stand_in.text_config.intermediate_size = 1, 16
        mlp = AerithForConditionalGeneration(stand_in)
        mlp.config = configs["mlp-336"]
        mlp.language_model = models["aerith-7b"].language_model
        mlp.dino_tower = models["aerith-7b"].dino_tower
        models["mlp-336"] = mlp.eval()
    all_layers = models["aerith-7b"].language_model.model.layers
    inputs = {name: _inputs(cfg, text_tokens, seed=1) for name, cfg in configs.items()}
    times: dict[tuple[str, int, int], list[float]] = {}
    walls: dict[tuple[str, int, int], list[float]] = {}
    cache: dict[tuple[str, int], int] = {}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU seconds of one thread: what the work costs, whatever else runs on the machine
    with torch.inference_mode():
        for name in models:  # warm-up: allocator, kernels
            _generate(models[name], inputs[name], 2)
        for _ in range(rounds):
            for depth in (layers, layers - 1):
                lm = models["aerith-7b"].language_model
                lm.model.layers = all_layers[:depth]
                lm.config.num_hidden_layers = depth
                for new in (SHORT, CAPTION):
                    for name, model in models.items():
                        seconds, nbytes, wall = _generate(model, inputs[name], new)
                        times.setdefault((name, depth, new), []).append(seconds)
                        walls.setdefault((name, depth, new), []).append(wall)
                        if depth == layers:
                            cache[(name, new)] = nbytes
        lm.model.layers = all_layers
        lm.config.num_hidden_layers = layers
    torch.set_num_threads(threads)
    rows = []
    full = designs()["aerith-7b"].text_config.num_hidden_layers
    for new in (SHORT, CAPTION):
        row: dict[str, Any] = {"new_tokens": new}
        for name in models:
            t_l, t_1 = (statistics.median(times[(name, d, new)]) for d in (layers, layers - 1))
            row[name] = {
                "seconds": t_l,
                "seconds_per_llm_layer": t_l - t_1,
                "seconds_32_layers_extrapolated": t_l + (full - layers) * (t_l - t_1),
                "cache_bytes_measured": cache[(name, new)],
                "wall_seconds": statistics.median(walls[(name, layers, new)]),
            }
        row["ratio"] = row["aerith-7b"]["seconds"] / row["mlp-336"]["seconds"]
        row["ratio_32_layers_extrapolated"] = (
            row["aerith-7b"]["seconds_32_layers_extrapolated"] / row["mlp-336"]["seconds_32_layers_extrapolated"]
        )
        rows.append(row)
    del models, mlp
    gc.collect()
    return {"layers": layers, "rounds": rounds, "threads": 1, "rows": rows,
            "load_average": [load_before, os.getloadavg()[0]], "cores": os.cpu_count()}


# -- the benchmark ------------------------------------------------------------------------------


def run(latency: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"text_tokens": TEXT_TOKENS, "designs": {}}
    for name, config in designs().items():
        counted = counted_prefill_flops(config)
        closed = closed_form_prefill_flops(config)
        out["designs"][name] = {
            "image_tokens": config.num_image_tokens,
            "prompt_tokens": prompt_tokens(config),
            "flops_counted": counted,
            "flops_closed_form": closed,
            "kv_bytes": {str(n): kv_cache_bytes(config, n) for n in (SHORT, CAPTION)},
            "llm_layers": config.text_config.num_hidden_layers,
        }
    a, m = out["designs"]["aerith-7b"], out["designs"]["mlp-336"]
    out["flops_ratio"] = a["flops_counted"]["total"] / m["flops_counted"]["total"]
    out["flops_ratio_without_dino"] = (a["flops_counted"]["total"] - a["flops_closed_form"]["dino"]) / (
        m["flops_counted"]["total"] - m["flops_closed_form"]["dino"]
    )
    if latency:
        out["latency"] = measure_latency()
    return out


def _g(flops: float) -> str:
    return f"{flops / 1e9:,.0f}"


def _mib(nbytes: float) -> str:
    return f"{nbytes / 2**20:,.1f}"


def to_markdown(result: dict[str, Any]) -> str:
    d = result["designs"]
    names = list(d)
    lines = [
        f"Prompt: one image plus {result['text_tokens']} text tokens. `mlp-336`: the same towers, LLM and prompt with "
        "`connector: mlp` (LLaVA-1.5's projector) over CLIP-L/14 at 336 px.",
        "",
        "(a) Prefill FLOPs (GFLOP), counted by FlopCounterMode on the full-size models on the meta device, "
        "and the closed form from the configs:",
        "",
        "| design | image tokens | prompt tokens | vision + connector | LLM (32 layers) | total counted | total closed form | closed / counted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in names:
        c, f = d[n]["flops_counted"], d[n]["flops_closed_form"]
        lines.append(
            f"| {n} | {d[n]['image_tokens']} | {d[n]['prompt_tokens']} | {_g(c['vision'])} | {_g(c['llm'])} | "
            f"{_g(c['total'])} | {_g(f['total'])} | {f['total'] / c['total']:.3f} |"
        )
    lines += [
        "",
        f"aerith-7b / mlp-336 prefill FLOPs: **{result['flops_ratio']:.2f}x** "
        f"({result['flops_ratio_without_dino']:.2f}x without the DINOv3 tower, as LLaVA-1.5 has none; "
        f"DINOv3-B at 224 px is {_g(d['aerith-7b']['flops_closed_form']['dino'])} GFLOP of either).",
        "",
        "(c) KV cache per request, bf16, 32 layers (closed form):",
        "",
        "| design | short answer | 60-token caption |",
        "|---|---|---|",
    ]
    short, cap = str(SHORT), str(CAPTION)
    for n in names:
        kv = d[n]["kv_bytes"]
        lines.append(f"| {n} | {_mib(kv[short])} MiB ({d[n]['prompt_tokens'] + SHORT} tokens) | "
                     f"{_mib(kv[cap])} MiB ({d[n]['prompt_tokens'] + CAPTION} tokens) |")
    ratio = d["aerith-7b"]["kv_bytes"][cap] / d["mlp-336"]["kv_bytes"][cap]
    lines += ["", f"Caption request: aerith-7b holds {ratio:.2f}x the cache of mlp-336."]
    lat = result.get("latency")
    if lat:
        lines += [
            "",
            f"(b) CPU seconds per image on this machine, one torch thread (process CPU time, so that other processes "
            f"on a shared machine do not count), float32, random weights, real widths (hidden 4096, CLIP-L/14 and "
            f"DINOv3-B/16 with all their layers) and {lat['layers']} of the 32 LLM layers; greedy, batch 1, median of "
            f"{lat['rounds']} alternating rounds. The 32-layer columns add (t({lat['layers']} layers) - "
            f"t({lat['layers'] - 1})) per missing layer: an extrapolation, not a measurement.",
            "",
            f"| answer | aerith-7b s | mlp-336 s | ratio | aerith-7b s/LLM layer | mlp-336 s/LLM layer | aerith-7b s, 32 layers | "
            f"mlp-336 s, 32 layers | ratio, 32 layers | wall s aerith-7b / mlp-336 |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in lat["rows"]:
            a, m = row["aerith-7b"], row["mlp-336"]
            lines.append(
                f"| {row['new_tokens']} tokens | {a['seconds']:.2f} | {m['seconds']:.2f} | {row['ratio']:.2f}x | "
                f"{a['seconds_per_llm_layer']:.3f} | {m['seconds_per_llm_layer']:.3f} | "
                f"{a['seconds_32_layers_extrapolated']:.1f} | {m['seconds_32_layers_extrapolated']:.1f} | "
                f"{row['ratio_32_layers_extrapolated']:.2f}x | {a.get('wall_seconds', float('nan')):.1f} / "
                f"{m.get('wall_seconds', float('nan')):.1f} |"
            )
        layers = lat["layers"]
        checks = []
        for row in lat["rows"]:
            for n in names:
                # float32, the measured layers; the last generated token's keys are never stored
                closed = kv_cache_bytes(designs()[n], row["new_tokens"] - 1) * layers // 32 * 2
                checks.append(f"{n} {row['new_tokens']} tokens: {row[n]['cache_bytes_measured'] / closed:.3f}")
        lines += ["", "KV cache left by those generations (float32, measured layers) over the closed form: " + ", ".join(checks) + "."]
        if "load_average" in lat:
            before, after = lat["load_average"]
            lines += ["", f"Load average (1 min) at the start and end of the timing: {before:.1f} and {after:.1f} on "
                          f"{lat['cores']} cores: other processes shared the machine. CPU time leaves out the waiting, not "
                          "the shared caches and memory bandwidth; the two designs alternated, so the ratios hold better "
                          "than the seconds."]
    else:
        lines += ["", "(b) latency: not measured in this run (--flops-only)."]
    return "\n".join(lines)


if __name__ == "__main__":
    print(to_markdown(run(latency="--flops-only" not in sys.argv)))
