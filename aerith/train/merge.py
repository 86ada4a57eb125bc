"""``aerith merge-lora``: fold a run's LoRA adapters into the language model and save a plain model."""

from __future__ import annotations

from pathlib import Path

from aerith.runs import resolve_checkpoint, saved_dtype


def merge_lora_checkpoint(source: str | Path, out: str | Path, *, overwrite: bool = False) -> Path:
    """Load ``source`` (run or checkpoint), merge its LoRA, save to ``out`` atomically; returns ``out``.

    The result loads with ``AerithVLM.from_pretrained`` and gives the same outputs as the unmerged model.
    An existing ``out`` is replaced only with ``overwrite`` and only if it holds a saved model; this is
    checked before the model loads.
    """
    from aerith.atomic import check_replaceable
    from aerith.infer.facade import holds_saved_model
    from aerith.infer.load import load_vlm

    ckpt = resolve_checkpoint(source)
    out = Path(out)
    check_replaceable(out, overwrite, holds_saved_model, "a saved model")
    if out.resolve() == ckpt.resolve():
        raise ValueError(f"--out {out} is the checkpoint being merged; write the merged model elsewhere")
    vlm = load_vlm(ckpt, device="cpu")
    if vlm.kind != "aerith":
        raise ValueError(f"{ckpt} is an InstructBLIP checkpoint; merge-lora applies to AerithVLM LoRA adapters")
    if vlm.model.config.lora is None:
        raise ValueError(f"{ckpt} has no LoRA adapters to merge")
    vlm.model.merge_lora()
    vlm.model.config.training_state = f"{vlm.model.config.training_state}; LoRA merged"
    dtype = saved_dtype(ckpt)  # merged in float32, saved as the checkpoint was (a bf16 7B stays 14 GB)
    if dtype is not None:
        vlm.model.to(dtype)
    return vlm.save_pretrained(out, overwrite=overwrite)
