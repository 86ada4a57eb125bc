"""``aerith merge-lora``: fold a run's LoRA adapters into the language model and save a plain model."""

from __future__ import annotations

from pathlib import Path

from aerith.train.run_folder import FINAL, checkpoints


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its ``checkpoint-final`` (else its newest step checkpoint); a checkpoint -> itself."""
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / FINAL / "config.json").is_file():
        return path / FINAL
    found = checkpoints(path) if path.is_dir() else []
    if found:
        return found[-1]
    raise FileNotFoundError(f"{path}: neither a checkpoint (no config.json) nor a run folder with checkpoints")


def merge_lora_checkpoint(source: str | Path, out: str | Path) -> Path:
    """Load ``source`` (run or checkpoint), merge its LoRA, save to ``out`` atomically; returns ``out``.

    The result loads with ``AerithVLM.from_pretrained`` and gives the same outputs as the unmerged model.
    """
    from aerith.infer.vlm import AerithVLM
    from aerith.train.backbones import model_kind

    ckpt = resolve_checkpoint(source)
    if model_kind(ckpt) != "aerith":
        raise ValueError(f"{ckpt} is an InstructBLIP checkpoint; merge-lora applies to AerithVLM LoRA adapters")
    vlm = AerithVLM.from_pretrained(ckpt, device="cpu")
    if vlm.model.config.lora is None:
        raise ValueError(f"{ckpt} has no LoRA adapters to merge")
    vlm.model.merge_lora()
    vlm.model.config.training_state = f"{vlm.model.config.training_state}; LoRA merged"
    return vlm.save_pretrained(out)
