"""InstructBlipVLM: transformers' InstructBLIP behind the same facade as AerithVLM."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import InstructBlipForConditionalGeneration, InstructBlipProcessor

from aerith.infer.facade import VLM, check_device, load_saved
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

    def generate_batch(
        self, images: list[Any], prompts: list[str], *, offset: int, max_new_tokens: int, do_sample: bool,
        bands: Sequence[int] | None, **generate_kwargs: Any,
    ) -> list[str]:
        """One batch: query tokens + prompt to the language model, its answer decoded.

        A T5 language model reads them in its encoder (right-padded) and returns only the answer; a
        decoder-only one (Vicuna) reads them left-padded and returns them before the answer, which is
        cut off here.
        """
        decoder_only = bool(getattr(self.model.config, "use_decoder_only_language_model", False))
        side = "left" if decoder_only else "right"
        inputs = encode_inputs(self.processor, self.model.config, images, prompts, bands, padding_side=side)
        self._check_length(inputs["qformer_attention_mask"].sum(dim=1).tolist(), offset)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        out = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=do_sample, **generate_kwargs)
        if decoder_only and out.shape[1] >= inputs["input_ids"].shape[1] and torch.equal(
            out[:, : inputs["input_ids"].shape[1]], inputs["input_ids"]
        ):
            out = out[:, inputs["input_ids"].shape[1] :]
        return [t.strip() for t in self.processor.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _check_length(self, lengths: list[int], offset: int) -> None:
        """The Q-Former reads the prompt too: refuse one longer than its positions."""
        limit = self.model.config.qformer_config.max_position_embeddings
        for i, n in enumerate(lengths):
            if n > limit:
                raise ValueError(f"prompt {offset + i}: {n} tokens exceed the Q-Former's {limit} positions; shorten it")


__all__ = ["InstructBlipVLM"]
