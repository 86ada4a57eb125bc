"""AerithVLM: load a model, ask it about RS images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aerith.infer.facade import RANDOM_WEIGHTS_WARNING, VLM, as_list, check_device, default_device, prompts_for
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.processing_aerith import AerithProcessor


class AerithVLM(VLM):
    """An AerithVLM model and its processor, with one-call methods per task.

    Example::

        vlm = AerithVLM.from_preset("aerith-tiny", seed=0)     # offline, random weights
        vlm.generate("scene.tif", "[CAP] Describe this image.")
    """

    kind = "aerith"
    model: AerithForConditionalGeneration
    processor: AerithProcessor

    # -- loading ------------------------------------------------------------------------------------
    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        seed: int = 0,
        device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        load_in_4bit: bool = False,
    ) -> AerithVLM:
        """Build preset ``name`` (see :func:`aerith.list_presets`)."""
        from aerith.models.build import build_from_preset

        model, processor = build_from_preset(
            name, seed=seed, device=check_device(device), dtype=dtype, load_in_4bit=load_in_4bit
        )
        return cls(model, processor, name=name)

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
    ) -> AerithVLM:
        """Load a folder written by :meth:`save_pretrained` (or a training checkpoint)."""
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json; expected a folder written by AerithVLM.save_pretrained")
        device = check_device(device)
        config = AerithConfig.from_pretrained(path)
        if config.model_type != AerithConfig.model_type:
            raise ValueError(f"{path}/config.json is a {config.model_type!r} model, not {AerithConfig.model_type!r}")
        model = AerithForConditionalGeneration.from_pretrained(path, dtype=dtype or torch.float32)
        processor = AerithProcessor.from_pretrained(path)
        return cls(model.to(device).eval(), processor, name=str(path))

    @classmethod
    def load(cls, model: str | Path, **kwargs: Any) -> AerithVLM:
        """Deprecated: use :func:`aerith.load_vlm`, which also loads InstructBLIP and run folders."""
        from aerith.infer.load import load_vlm

        vlm = load_vlm(model, **kwargs)
        if not isinstance(vlm, cls):
            raise ValueError(f"{model!r} is a {vlm.kind} model, not an AerithVLM; load it with aerith.load_vlm")
        return vlm

    # -- generation ---------------------------------------------------------------------------------
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
        """Answer ``prompts`` about ``images``.

        Args:
            images: one image (path, PIL image, array) or a list of them.
            prompts: one instruction (``"[CAP] Describe this image."``) or one per image;
                a single string with a list of images is asked of every image.
            batch_size: images per forward pass (left-padded batches).
        Returns:
            a string for one image, else a list of strings in input order.
        """
        single, image_list = as_list(images)
        prompt_list = prompts_for(prompts, len(image_list))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.warn_if_random()
        tokenizer = self.processor.tokenizer
        outputs: list[str] = []
        for start in range(0, len(image_list), batch_size):
            chunk_images = image_list[start : start + batch_size]
            texts = [self.processor.format_prompt(p) for p in prompt_list[start : start + batch_size]]
            inputs = self.processor(images=chunk_images, text=texts, bands=bands, padding_side="left")
            inputs = inputs.to(self.device)
            inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
            inputs["dino_pixel_values"] = inputs["dino_pixel_values"].to(self.model.dtype)
            out = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **generate_kwargs,
            )
            new_tokens = out[:, inputs["input_ids"].shape[1] :]
            outputs.extend(t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
        return outputs[0] if single else outputs


__all__ = ["RANDOM_WEIGHTS_WARNING", "AerithVLM", "default_device"]
