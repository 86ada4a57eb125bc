"""The GPU path: aerith-7b with random weights on one CUDA device, training steps and generation, both connectors.

Measures, for ``connector: pooler`` (the seed, 144 image tokens) and ``connector: mlp`` (LLaVA-1.5's
projector over CLIP-L/14 at 336 px, 576 tokens), the same Llama-2-7B-sized language model and towers:

- **train step** (forward, backward, AdamW step) time and peak memory at batch 1 and 8, with LoRA
  (r=16, Aerith's default targets) and the connector trained, towers frozen, gradient checkpointing
  on: bf16 base, and a 4-bit NF4 base (bitsandbytes; the language model's linear layers quantized);
- **generation** tokens/s at batch 1 and 16: greedy, exactly ``NEW_TOKENS`` new tokens, bf16.

Nothing is downloaded: the configs are built locally (``aerith.models.presets``) and the weights
are random, so only time and memory mean anything. Every measurement runs on its own; one that
fails (out of memory, bitsandbytes missing) is reported as such in the table and the others go on.

Run: ``python benchmarks/bench_gpu.py`` (one command; prints a Markdown table; ``--json FILE``
also writes the numbers). Without CUDA it prints why and exits with status 0 having run nothing;
``aerith bench`` then skips it and keeps its section of RESULTS.md.
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

TEXT_TOKENS = 32  # prompt text around the image
ANSWER_TOKENS = 32  # supervised answer tokens per training sample
NEW_TOKENS = 64  # generated tokens per request
TRAIN_BATCHES = (1, 8)
GEN_BATCHES = (1, 16)
TRAIN_STEPS = 5  # timed, after WARMUP
GEN_REPEATS = 3
WARMUP = 2


def skip_reason() -> str | None:
    """Why this benchmark cannot run here (no CUDA), else ``None``."""
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA device: bench_gpu measures the GPU path and needs one (nothing was run)"
    return None


def configs() -> dict[str, Any]:
    """``{"pooler": aerith-7b's config, "mlp": the same with connector mlp over CLIP @336 px}``."""
    from aerith.models.presets import get_preset

    pooler = get_preset("aerith-7b").make_config()
    mlp = get_preset("aerith-7b").make_config()
    mlp.connector = "mlp"
    mlp.clip_config.image_size = 336
    for cfg in (pooler, mlp):
        cfg.text_config.pad_token_id = 0
    return {"pooler": pooler, "mlp": mlp}


def build(config: Any, *, four_bit: bool = False) -> Any:
    """The model with random weights on ``cuda``, bf16; with ``four_bit`` the LM's decoder linears in NF4."""
    import torch

    from aerith.models.modeling_aerith import AerithForConditionalGeneration

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        torch.manual_seed(0)
        with torch.device("cuda"):
            model = AerithForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    if four_bit:
        quantize_language_model(model)
    return model


def quantize_language_model(model: Any, device: str = "cuda") -> int:
    """Replace every ``nn.Linear`` of the language model's decoder layers by a bitsandbytes NF4 ``Linear4bit``.

    Returns:
        The number of layers quantized.
    """
    import bitsandbytes as bnb
    import torch
    from torch import nn

    layers = model.language_model.model.layers
    targets = [(parent, name, child) for parent in layers.modules() for name, child in parent.named_children()
               if isinstance(child, nn.Linear)]
    for parent, name, linear in targets:
        q = bnb.nn.Linear4bit(
            linear.in_features, linear.out_features, bias=linear.bias is not None,
            compute_dtype=torch.bfloat16, quant_type="nf4", device="cpu",
        )
        q.weight = bnb.nn.Params4bit(linear.weight.data.to("cpu"), requires_grad=False, quant_type="nf4", module=q)
        if linear.bias is not None:
            q.bias = nn.Parameter(linear.bias.data.to("cpu"), requires_grad=False)
        setattr(parent, name, q.to(device))  # quantized on the move to the device
        del linear
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return len(targets)


def make_batch(config: Any, batch: int, *, answer: bool, seed: int = 0, device: str = "cuda") -> dict[str, Any]:
    """Token ids (BOS, the image tokens, prompt text, optionally an answer), pixels; labels on the answer."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n_text = TEXT_TOKENS - 1 + (ANSWER_TOKENS if answer else 0)
    text = torch.randint(3, config.image_token_id, (batch, n_text), generator=g)
    image = torch.full((batch, config.num_image_tokens), config.image_token_id)
    ids = torch.cat([torch.ones(batch, 1, dtype=torch.long), image, text], dim=1)
    c, d = config.clip_config.image_size, config.dino_config.image_size
    out = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "pixel_values": torch.randn(batch, 3, c, c, generator=g),
        "dino_pixel_values": torch.randn(batch, 3, d, d, generator=g),
    }
    if answer:
        labels = ids.clone()
        labels[:, : ids.shape[1] - ANSWER_TOKENS] = -100
        out["labels"] = labels
    return {k: v.to(device, dtype=torch.bfloat16 if v.is_floating_point() else None) for k, v in out.items()}


def prepare_training(model: Any) -> Any:
    """LoRA on the language model, the connector trainable, towers frozen, gradient checkpointing; an AdamW."""
    import torch

    from aerith.models.lora import LoraSettings

    model.add_lora(LoraSettings())
    model.requires_grad_(False)
    trainable = [p for n, p in model.language_model.named_parameters() if "lora_" in n] + model.connector_parameters()
    for p in trainable:
        p.requires_grad_(True)
    model.config.use_cache = False
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})  # as aerith sft does
    model.train()
    model.clip_tower.eval()
    model.dino_tower.eval()
    return torch.optim.AdamW(trainable, lr=1e-5)


def _sync_time(fn: Callable[[], Any]) -> float:
    import torch

    torch.cuda.synchronize()
    tic = time.perf_counter()
    fn()
    torch.cuda.synchronize()
    return time.perf_counter() - tic


def train_steps(model: Any, optimizer: Any, config: Any, batch: int) -> dict[str, Any]:
    """Median seconds of a training step and the peak memory, at ``batch`` samples per step."""
    import torch

    inputs = make_batch(config, batch, answer=True)

    def step() -> None:
        loss = model(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(WARMUP):
        step()
    torch.cuda.reset_peak_memory_stats()
    times = [_sync_time(step) for _ in range(TRAIN_STEPS)]
    seconds = statistics.median(times)
    return {
        "seconds_per_step": seconds,
        "samples_per_s": batch / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
        "sequence": int(inputs["input_ids"].shape[1]),
    }


def generation(model: Any, config: Any, batch: int) -> dict[str, Any]:
    """Median tokens/s of greedy generation of exactly ``NEW_TOKENS`` tokens per request, ``batch`` requests."""
    import torch

    inputs = make_batch(config, batch, answer=False)

    def run() -> None:
        out = model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False,
                             pad_token_id=0, eos_token_id=2)
        if out.shape[1] - inputs["input_ids"].shape[1] != NEW_TOKENS:
            raise RuntimeError("generation stopped early")

    with torch.inference_mode():
        run()
        torch.cuda.reset_peak_memory_stats()
        times = [_sync_time(run) for _ in range(GEN_REPEATS)]
    seconds = statistics.median(times)
    return {
        "seconds": seconds,
        "tokens_per_s": batch * NEW_TOKENS / seconds,
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30,
    }


def _free() -> None:
    import torch

    gc.collect()
    torch.cuda.empty_cache()


def _attempt(rows: list[dict[str, Any]], row: dict[str, Any], fn: Callable[[], dict[str, Any]], echo: Callable[[str], None]) -> None:
    """Run one measurement; record its numbers, or why it failed, and go on."""
    import torch

    echo(f"  {row['what']} {row['connector']} batch {row['batch']} ...")
    try:
        row.update(fn())
    except torch.cuda.OutOfMemoryError:
        row["error"] = "out of memory"
    except Exception as err:  # noqa: BLE001 - one failed measurement must not lose the others
        row["error"] = f"{type(err).__name__}: {str(err)[:160]}"
        traceback.print_exc(file=sys.stderr)
    rows.append(row)
    _free()


def run(echo: Callable[[str], None] = lambda m: print(m, file=sys.stderr)) -> dict[str, Any]:
    reason = skip_reason()
    if reason is not None:
        return {"skipped": reason}
    import torch

    info = {
        "device": torch.cuda.get_device_name(0),
        "memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
    }
    rows: list[dict[str, Any]] = []
    for connector, config in configs().items():
        # generation first, on the plain bf16 model
        model = None
        try:
            echo(f"building aerith-7b ({connector}), bf16, random weights ...")
            model = build(config).eval()
            for batch in GEN_BATCHES:
                _attempt(rows, {"what": "generate", "connector": connector, "batch": batch, "base": "bf16"},
                         lambda: generation(model, config, batch), echo)
            optimizer = prepare_training(model)
            for batch in TRAIN_BATCHES:
                _attempt(rows, {"what": "train", "connector": connector, "batch": batch, "base": "bf16"},
                         lambda: train_steps(model, optimizer, config, batch), echo)
        except Exception as err:  # noqa: BLE001 - building failed: say so for this connector, go on
            rows.append({"what": "build", "connector": connector, "batch": "-", "base": "bf16",
                         "error": f"{type(err).__name__}: {str(err)[:160]}"})
            traceback.print_exc(file=sys.stderr)
        model = optimizer = None
        _free()
        try:
            import bitsandbytes  # noqa: F401

            echo(f"building aerith-7b ({connector}), NF4 language model ...")
            model = build(config, four_bit=True)
            optimizer = prepare_training(model)
            for batch in TRAIN_BATCHES:
                _attempt(rows, {"what": "train", "connector": connector, "batch": batch, "base": "4-bit"},
                         lambda: train_steps(model, optimizer, config, batch), echo)
        except ImportError:
            for batch in TRAIN_BATCHES:
                rows.append({"what": "train", "connector": connector, "batch": batch, "base": "4-bit",
                             "error": "bitsandbytes is not installed (pip install 'aerith[quant]')"})
        except Exception as err:  # noqa: BLE001
            rows.append({"what": "build", "connector": connector, "batch": "-", "base": "4-bit",
                         "error": f"{type(err).__name__}: {str(err)[:160]}"})
            traceback.print_exc(file=sys.stderr)
        model = optimizer = None
        _free()
    return {**info, "text_tokens": TEXT_TOKENS, "answer_tokens": ANSWER_TOKENS, "new_tokens": NEW_TOKENS, "rows": rows}


def to_markdown(result: dict[str, Any]) -> str:
    if "skipped" in result:
        return f"Not run: {result['skipped']}."
    lines = [
        f"{result['device']} ({result['memory_gib']:.0f} GiB), torch {result['torch']}, CUDA {result['cuda']}. "
        f"aerith-7b sizes with random weights; pooler: 144 image tokens, mlp: 576 (CLIP-L/14 at 336 px). "
        f"Training: LoRA r=16 + connector, towers frozen, gradient checkpointing, {TEXT_TOKENS} prompt + "
        f"{ANSWER_TOKENS} answer tokens, median of {TRAIN_STEPS} steps after {WARMUP}. Generation: greedy, "
        f"{result['new_tokens']} new tokens per request, median of {GEN_REPEATS}.",
        "",
        "| measure | connector | base | batch | time | throughput | peak memory (GiB) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        if "error" in r:
            lines.append(f"| {r['what']} | {r['connector']} | {r['base']} | {r['batch']} | failed: {r['error']} | | |")
        elif r["what"] == "train":
            lines.append(f"| train step | {r['connector']} | {r['base']} | {r['batch']} | {r['seconds_per_step'] * 1000:.0f} ms "
                         f"| {r['samples_per_s']:.2f} samples/s | {r['peak_memory_gib']:.1f} |")
        else:
            lines.append(f"| generate | {r['connector']} | {r['base']} | {r['batch']} | {r['seconds']:.2f} s "
                         f"| {r['tokens_per_s']:.1f} tokens/s | {r['peak_memory_gib']:.1f} |")
    by = {(r["what"], r["connector"], r["base"], r["batch"]): r for r in result["rows"] if "error" not in r}
    ratios = []
    for key, field, label in ((("generate", "bf16", 16), "tokens_per_s", "generation tokens/s at batch 16"),
                              (("train", "bf16", 8), "samples_per_s", "bf16 training samples/s at batch 8")):
        what, base, batch = key
        p, m = by.get((what, "pooler", base, batch)), by.get((what, "mlp", base, batch))
        if p and m:
            ratios.append(f"{label}: pooler {p[field] / m[field]:.2f}x mlp")
    if ratios:
        lines += ["", "; ".join(ratios) + "."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    reason = skip_reason()
    if reason is not None:
        print(f"bench_gpu: {reason}.")
        return 0
    result = run()
    print(to_markdown(result))
    if "--json" in argv:
        path = argv[argv.index("--json") + 1]
        with open(path, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
