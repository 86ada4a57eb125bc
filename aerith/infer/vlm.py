"""AerithVLM: load a model, ask it about RS images."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aerith.atomic import atomic_dir
from aerith.boxes import PixelBox
from aerith.data.io import load_rgb
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.processing_aerith import AerithProcessor
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt, vqa_prompt

logger = logging.getLogger(__name__)

RANDOM_WEIGHTS_WARNING = (
    "{name} has RANDOM weights (training_state={state!r}): its outputs are noise, not predictions. "
    "Train it (aerith sft) or load a trained checkpoint."
)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class AerithVLM:
    """A model and its processor, with one-call methods per task.

    Example::

        vlm = AerithVLM.from_preset("aerith-tiny", seed=0)     # offline, random weights
        vlm.generate("scene.tif", "[CAP] Describe this image.")
    """

    def __init__(self, model: AerithForConditionalGeneration, processor: AerithProcessor, name: str = "model") -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self._warned_random = False

    # -- loading and saving -------------------------------------------------------------------------
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
            name, seed=seed, device=device or default_device(), dtype=dtype, load_in_4bit=load_in_4bit
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
        config = AerithConfig.from_pretrained(path)
        if config.model_type != AerithConfig.model_type:
            raise ValueError(f"{path}/config.json is a {config.model_type!r} model, not {AerithConfig.model_type!r}")
        model = AerithForConditionalGeneration.from_pretrained(path, dtype=dtype or torch.float32)
        processor = AerithProcessor.from_pretrained(path)
        return cls(model.to(device or default_device()).eval(), processor, name=str(path))

    def save_pretrained(self, path: str | Path) -> Path:
        """Write config, weights (safetensors) and processor; atomically (temp folder + rename)."""
        path = Path(path)
        with atomic_dir(path) as tmp:
            self.model.save_pretrained(tmp)
            self.processor.save_pretrained(tmp)
        return path

    @property
    def is_random_init(self) -> bool:
        return self.model.config.training_state == "random-init"

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def load(cls, model: str | Path, **kwargs: Any) -> AerithVLM:
        """A preset name (see :func:`aerith.list_presets`) or a saved folder."""
        from aerith.models.presets import PRESETS, list_presets

        if str(model) in PRESETS:
            return cls.from_preset(str(model), **kwargs)
        if Path(model).is_dir():
            return cls.from_pretrained(model, **kwargs)
        raise FileNotFoundError(
            f"{model!r} is neither a preset ({', '.join(list_presets())}) nor a folder with a saved model"
        )

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
        single = not isinstance(images, (list, tuple))
        image_list = [images] if single else list(images)
        if isinstance(prompts, str):
            prompt_list = [prompts] * len(image_list)
        else:
            prompt_list = list(prompts)
            if len(prompt_list) != len(image_list):
                raise ValueError(f"{len(image_list)} image(s) but {len(prompt_list)} prompt(s); give one prompt per image")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if self.is_random_init and not self._warned_random:
            self._warned_random = True
            logger.warning(RANDOM_WEIGHTS_WARNING.format(name=self.name, state=self.model.config.training_state))
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

    # -- one call per task --------------------------------------------------------------------------
    def _many(self, images: Any, prompts: Any, **kwargs: Any) -> tuple[bool, list[str]]:
        single = not isinstance(images, (list, tuple))
        out = self.generate(images if not single else [images], prompts, **kwargs)
        return single, out

    def classify(self, images: Any, classes: Sequence[str], **kwargs: Any) -> str | list[str]:
        """Scene class of each image, one of ``classes``; an answer naming no class is returned as said."""
        from aerith.eval.classification import match_class

        single, answers = self._many(images, classify_prompt(classes), **kwargs)
        out = [match_class(a, list(classes))[0] or a for a in answers]
        return out[0] if single else out

    def answer(self, images: Any, questions: str | Sequence[str], **kwargs: Any) -> str | list[str]:
        """Short answer to a question about each image (RSVQA style)."""
        prompts = vqa_prompt(questions) if isinstance(questions, str) else [vqa_prompt(q) for q in questions]
        single, out = self._many(images, prompts, **kwargs)
        return out[0] if single else out

    def caption(self, images: Any, **kwargs: Any) -> str | list[str]:
        """A caption of each image."""
        single, out = self._many(images, caption_prompt(), **kwargs)
        return out[0] if single else out

    def ground(
        self, images: Any, expressions: str | Sequence[str], **kwargs: Any
    ) -> list[PixelBox] | list[list[PixelBox]]:
        """Boxes ``(x1, y1, x2, y2)`` in pixels of the original image for each referring expression.

        The model answers on the 0-1000 grid; an answer with no box gives ``[]``.
        """
        from aerith.eval.parse_boxes import parse_boxes

        prompts = ground_prompt(expressions) if isinstance(expressions, str) else [ground_prompt(e) for e in expressions]
        single, answers = self._many(images, prompts, **kwargs)
        image_list = [images] if single else list(images)
        sizes = [load_rgb(im, kwargs.get("bands")).size for im in image_list]
        boxes = [parse_boxes(a, size, fmt="aerith") for a, size in zip(answers, sizes)]
        return boxes[0] if single else boxes
