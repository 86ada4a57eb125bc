"""InstructBlipVLM: transformers' InstructBLIP behind the same facade as AerithVLM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import InstructBlipForConditionalGeneration, InstructBlipProcessor

from aerith.infer.facade import VLM, as_list, check_device, load_saved, prompts_for
from aerith.models.instructblip import build_instructblip, encode_inputs


class InstructBlipVLM(VLM):
    """An InstructBLIP model and its processor, loaded and saved like :class:`aerith.AerithVLM`.

    Example::

        vlm = InstructBlipVLM.from_preset("instructblip-tiny")   # offline, random weights
        vlm.generate("scene.png", "[CAP] Describe this image.")
    """

    kind = "instructblip"
    model: InstructBlipForConditionalGeneration
    processor: InstructBlipProcessor

    @classmethod
    def from_preset(
        cls, name: str, *, seed: int = 0, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> InstructBlipVLM:
        """Build preset ``name``: random and offline for ``instructblip-tiny``, hub weights otherwise."""
        model, processor = build_instructblip(name, seed=seed, device=check_device(device), dtype=dtype)
        return cls(model, processor, name=name)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> InstructBlipVLM:
        """Load a folder written by :meth:`save_pretrained` (or a training checkpoint)."""
        path = Path(path)
        device = check_device(device)
        model, processor = load_saved(path, InstructBlipForConditionalGeneration, InstructBlipProcessor, dtype)
        return cls(model.to(device).eval(), processor, name=str(path))

    @torch.inference_mode()
    def generate(
        self,
        images: Any,
        prompts: str | Sequence[str],
        *,
        batch_size: int = 16,
        max_new_tokens: int = 64,
        do_sample: bool = False,
        bands: Sequence[int] | None = None,
        **generate_kwargs: Any,
    ) -> str | list[str]:
        """Answer ``prompts`` (one, or one per image) about ``images`` (greedy by default), ``batch_size`` at a time."""
        single, image_list = as_list(images)
        prompt_list = prompts_for(prompts, len(image_list))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.warn_if_random()
        texts: list[str] = []
        for start in range(0, len(image_list), batch_size):
            chunk = slice(start, start + batch_size)
            inputs = encode_inputs(self.processor, self.model.config, image_list[chunk], prompt_list[chunk], bands)
            self._check_length(inputs["qformer_attention_mask"].sum(dim=1).tolist(), start)
            inputs = {k: v.to(self.device) for k, v in inputs.items()}
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample, **generate_kwargs)
            texts.extend(t.strip() for t in self.processor.tokenizer.batch_decode(out, skip_special_tokens=True))
        return texts[0] if single else texts

    def _check_length(self, lengths: list[int], offset: int) -> None:
        """The Q-Former reads the prompt too: refuse one longer than its positions."""
        limit = self.model.config.qformer_config.max_position_embeddings
        for i, n in enumerate(lengths):
            if n > limit:
                raise ValueError(f"prompt {offset + i}: {n} tokens exceed the Q-Former's {limit} positions; shorten it")


__all__ = ["InstructBlipVLM"]
