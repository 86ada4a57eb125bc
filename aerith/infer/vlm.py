"""AerithVLM: load a model, ask it about RS images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aerith.boxes import GRID, format_box
from aerith.infer.facade import (
    RANDOM_WEIGHTS_WARNING,
    VLM,
    check_device,
    default_device,
    json_model_type,
    load_saved,
)
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.processing_aerith import AerithProcessor
from aerith.tasks import TASK_TOKENS


def is_grounding_prompt(prompt: str) -> bool:
    """The prompt asks for a box: it starts with the ``[VG]`` task token."""
    return prompt.lstrip().startswith(TASK_TOKENS["vg"])


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
        model_type = json_model_type(path / "config.json")
        if model_type != AerithConfig.model_type:
            raise ValueError(f"{path}/config.json is a {model_type!r} model, not {AerithConfig.model_type!r}")
        model, processor = load_saved(path, AerithForConditionalGeneration, AerithProcessor, dtype)
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
    def generate_batch(
        self, images: list[Any], prompts: list[str], *, offset: int, max_new_tokens: int, do_sample: bool,
        bands: Sequence[int] | None, **generate_kwargs: Any,
    ) -> list[str]:
        """One left-padded batch through the model's ``generate``; new tokens decoded.

        With a box head (``config.box_head``), grounding prompts (those starting with the ``[VG]``
        task token) are answered by the head instead, in the box text the model is trained to write
        (the whole box: ``max_new_tokens`` and sampling settings do not apply to it).
        """
        located = [i for i, p in enumerate(prompts) if self.model.box_head is not None and is_grounding_prompt(p)]
        if not located:
            indices = [offset + i for i in range(len(prompts))]
            return self._generate_text(images, prompts, indices, max_new_tokens, do_sample, bands, generate_kwargs)
        answers: list[str | None] = [None] * len(prompts)
        boxes = self._locate([images[i] for i in located], [prompts[i] for i in located], bands, [offset + i for i in located])
        for i, box in zip(located, boxes):
            answers[i] = box
        rest = [i for i in range(len(prompts)) if answers[i] is None]
        if rest:
            texts = self._generate_text(
                [images[i] for i in rest], [prompts[i] for i in rest], [offset + i for i in rest], max_new_tokens,
                do_sample, bands, generate_kwargs,
            )
            for i, text in zip(rest, texts):
                answers[i] = text
        return [a for a in answers if a is not None]

    def _locate(self, images: list[Any], prompts: list[str], bands: Sequence[int] | None, indices: list[int]) -> list[str]:
        inputs = self.processor(images=images, prompts=prompts, bands=bands, padding_side="left")
        self._check_length(inputs["attention_mask"].sum(dim=1).tolist(), 0, indices)
        inputs = inputs.to(self.device)
        boxes = self.model.locate(
            inputs["input_ids"],
            inputs["pixel_values"].to(self.model.dtype),
            inputs["dino_pixel_values"].to(self.model.dtype),
            inputs["attention_mask"],
        )
        return [format_box([round(float(v) * GRID) for v in box]) for box in boxes.float().cpu()]

    def _generate_text(
        self, images: list[Any], prompts: list[str], indices: list[int], max_new_tokens: int, do_sample: bool,
        bands: Sequence[int] | None, generate_kwargs: dict[str, Any],
    ) -> list[str]:
        tokenizer = self.processor.tokenizer
        inputs = self.processor(images=images, prompts=prompts, bands=bands, padding_side="left")
        self._check_length(inputs["attention_mask"].sum(dim=1).tolist(), max_new_tokens, indices)
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
        return [t.strip() for t in tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]

    def _check_length(self, lengths: list[int], max_new_tokens: int, indices: list[int]) -> None:
        """Refuse a prompt the language model cannot hold with its answer (it would answer noise);
        ``indices``: each prompt's number in the caller's list, for the message."""
        limit = getattr(self.model.config.text_config, "max_position_embeddings", None)
        for i, n in zip(indices, lengths):
            if limit is not None and n + max_new_tokens > limit:
                what = f"{n} tokens (with {self.model.config.num_image_tokens} image tokens)"
                if max_new_tokens == 0:  # a grounding prompt the box head answers: no tokens are generated
                    raise ValueError(f"prompt {i}: {what} exceed the language model's {limit} positions; shorten the prompt")
                raise ValueError(
                    f"prompt {i}: {what} + max_new_tokens {max_new_tokens} exceed the language model's {limit} "
                    "positions; shorten the prompt or lower max_new_tokens"
                )


__all__ = ["RANDOM_WEIGHTS_WARNING", "AerithVLM", "default_device"]
