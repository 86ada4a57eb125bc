"""The facade protocol every model kind implements: one call per task on top of ``generate``.

A backbone subclass supplies ``generate`` (batched, greedy by default), ``save_pretrained``,
``model``/``processor`` and its provenance; the task calls (``classify``, ``answer``,
``caption``, ``ground``) are written once, here, over the canonical prompts of
:mod:`aerith.prompts`, so every backbone is asked and parsed the same way.
"""

from __future__ import annotations

import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from aerith.atomic import atomic_dir
from aerith.boxes import PixelBox
from aerith.imageio import load_rgb
from aerith.parsing.boxes import parse_boxes
from aerith.parsing.classes import match_class
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt, vqa_prompt

logger = logging.getLogger(__name__)

RANDOM_INIT = "random-init"  # how a training_state of untrained weights begins
RANDOM_WEIGHTS_WARNING = (
    "{name} has RANDOM weights (training_state={state!r}): its outputs are noise, not predictions. "
    "Train it (aerith sft) or load a trained checkpoint."
)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_device(device: str | torch.device | None) -> torch.device:
    """The device to load on; a CUDA device on a machine without CUDA is a clear ``ValueError``."""
    if device is None:
        return default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device {device!r} is not a device name (cpu, cuda, cuda:1, mps)") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this machine has no CUDA GPU (torch sees none); use cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


class ModelFolderError(ValueError):
    """A saved model folder that cannot be loaded as it is: the message names the file and what is wrong."""


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def load_saved(path: Path, model_cls: Any, processor_cls: Any, dtype: torch.dtype | None) -> tuple[Any, Any]:
    """Model and processor from a ``save_pretrained`` folder, refusing any folder that would load partly.

    Every weight of the model must come from the folder: a checkpoint that lacks some (truncated,
    foreign, another architecture) would otherwise run with random weights in their place and
    answer noise with no error.

    Raises:
        ModelFolderError: naming the folder, the file and what is wrong.
    """
    from safetensors import SafetensorError

    config_file = path / "config.json"
    try:
        config = model_cls.config_class.from_pretrained(path)
    except (OSError, ValueError, TypeError, KeyError) as err:  # invalid JSON is a ValueError subclass
        raise ModelFolderError(f"{config_file}: not a valid {model_cls.config_class.__name__} ({_first_line(err)})") from err
    try:
        # mismatched shapes are reported in `info` (and refused below) rather than raised without the names
        model, info = model_cls.from_pretrained(
            path, config=config, dtype=dtype or torch.float32, output_loading_info=True, ignore_mismatched_sizes=True
        )
    except (OSError, RuntimeError, ValueError, TypeError, SafetensorError) as err:
        raise ModelFolderError(f"{path}: the weights do not load ({_first_line(err)})") from err
    problems = {k: sorted(info.get(k) or []) for k in ("missing_keys", "mismatched_keys")}
    if any(problems.values()):
        total = len(model.state_dict())
        missing, mismatched = problems["missing_keys"], problems["mismatched_keys"]
        parts = []
        if missing:
            parts.append(f"{len(missing)} of the model's {total} weights are missing (e.g. {', '.join(map(str, missing[:3]))})")
        if mismatched:
            parts.append(f"{len(mismatched)} have the wrong shape (e.g. {mismatched[0]})")
        raise ModelFolderError(
            f"{path}: {'; '.join(parts)}: a truncated, foreign or mismatched checkpoint. Refusing to run with "
            "random weights in their place"
        )
    try:
        processor = processor_cls.from_pretrained(path)
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        raise ModelFolderError(
            f"{path}: the processor does not load ({_first_line(err)}); a saved model needs its tokenizer and "
            "processor files beside config.json (save with save_pretrained)"
        ) from err
    return model, processor


def json_model_type(config_file: Path) -> Any:
    """The ``model_type`` written in a ``config.json``; a file that is no JSON object is a :class:`ModelFolderError`."""
    try:
        data = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(f"{config_file}: not a readable JSON model config ({_first_line(err)})") from err
    if not isinstance(data, dict):
        raise ModelFolderError(f"{config_file}: holds a JSON {type(data).__name__}, not an object with a model_type")
    return data.get("model_type")


def holds_saved_model(folder: Path) -> bool:
    """Whether ``folder`` holds a model written by ``save_pretrained``: a ``config.json`` naming a
    ``model_type`` and a weight file beside it (what may be replaced by another saved model)."""
    try:
        data = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    weights = any(p.suffix in (".safetensors", ".bin") for p in folder.iterdir() if p.is_file())
    return isinstance(data, dict) and "model_type" in data and weights


def as_list(images: Any) -> tuple[bool, list[Any]]:
    """``(single, images as a list)``: one image (path, PIL image, array) or a list/tuple of them."""
    single = not isinstance(images, (list, tuple))
    return single, ([images] if single else list(images))


def prompts_for(prompts: str | Sequence[str], n: int) -> list[str]:
    """One prompt per image: a single string is asked of every image."""
    if isinstance(prompts, str):
        return [prompts] * n
    out = list(prompts)
    if len(out) != n:
        raise ValueError(f"{n} image(s) but {len(out)} prompt(s); give one prompt per image")
    return out


class VLM(ABC):
    """A model and its processor with one-call methods per task (the facade protocol).

    Subclasses implement :meth:`generate`. ``name`` is what the model is called in
    results; ``is_random_init`` is true for untrained (random-weight) models.
    """

    kind: str = "vlm"

    def __init__(self, model: Any, processor: Any, name: str = "model") -> None:
        self.model = model
        self.processor = processor
        self.name = name
        self._warned_random = False

    # -- provenance ---------------------------------------------------------------------------------
    @property
    def training_state(self) -> str | None:
        return getattr(self.model.config, "training_state", None)

    @property
    def is_random_init(self) -> bool:
        """Whether the weights (or some of them) are untrained: a state that begins ``random-init``.

        Steps that train nothing append to the state (``"random-init; LoRA merged"``); training
        replaces it (``"sft: 120 steps on ... (from random-init)"``).
        """
        state = self.training_state
        return isinstance(state, str) and state.startswith(RANDOM_INIT)

    @property
    def random_weights_warning(self) -> str | None:
        """The warning to show users of a random-weight model, else ``None``."""
        if not self.is_random_init:
            return None
        return RANDOM_WEIGHTS_WARNING.format(name=self.name, state=self.training_state)

    def warn_if_random(self) -> None:
        """Log the random-weights warning once per facade."""
        if self.is_random_init and not self._warned_random:
            self._warned_random = True
            logger.warning(self.random_weights_warning)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def save_pretrained(self, path: str | Path, *, overwrite: bool = True) -> Path:
        """Write config, weights (safetensors) and processor atomically (temp folder, then one swap).

        An existing folder is replaced only if it holds a saved model (a ``config.json``) or is
        empty, and ``overwrite`` is true; a file, or a folder of anything else, is never deleted.
        """
        path = Path(path)
        # written by its absolute name: "." or ".." would put the temporary folder inside the one it replaces
        # (a failed swap, a traceback and the temporary folder left behind)
        target = Path(os.path.abspath(path))
        with atomic_dir(target, overwrite=overwrite, replaceable=holds_saved_model, what="a saved model") as tmp:
            self.model.save_pretrained(tmp)
            self.processor.save_pretrained(tmp)
        return path

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
        """Answer ``prompts`` about ``images`` (greedy by default), ``batch_size`` images at a time.

        Args:
            images: one image (path, PIL image, array) or a list of them.
            prompts: one instruction (``"[CAP] Describe this image."``) or one per image;
                a single string with a list of images is asked of every image.
            batch_size: images per forward pass.
            bands: band choice for multi-band images (0-based, stored order).
        Returns:
            a string for one image, else a list of strings in input order.
        """
        single, image_list = as_list(images)
        prompt_list = prompts_for(prompts, len(image_list))
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if generate_kwargs.get("num_return_sequences", 1) != 1:
            # transformers would return that many answers per image, and the list would no longer hold
            # one answer per image in input order (ground() would pair them with the wrong images)
            raise ValueError(
                f"num_return_sequences={generate_kwargs['num_return_sequences']}: generate answers once per image; "
                "to get several answers for one image, pass it several times (with do_sample=True)"
            )
        self.warn_if_random()
        outputs: list[str] = []
        for start in range(0, len(image_list), batch_size):
            chunk = slice(start, start + batch_size)
            outputs += self.generate_batch(
                image_list[chunk], prompt_list[chunk], offset=start, max_new_tokens=max_new_tokens,
                do_sample=do_sample, bands=bands, **generate_kwargs,
            )
        return outputs[0] if single else outputs

    @abstractmethod
    def generate_batch(
        self, images: list[Any], prompts: list[str], *, offset: int, max_new_tokens: int, do_sample: bool,
        bands: Sequence[int] | None, **generate_kwargs: Any,
    ) -> list[str]:
        """Answers for one batch (``offset``: the batch's first index, for error messages)."""

    def _many(self, images: Any, prompts: Any, **kwargs: Any) -> tuple[bool, list[str]]:
        single, image_list = as_list(images)
        return single, self.generate(image_list, prompts, **kwargs)

    # -- one call per task --------------------------------------------------------------------------
    def classify(self, images: Any, classes: Sequence[str], **kwargs: Any) -> str | list[str]:
        """Scene class of each image, one of ``classes``; an answer naming no class is returned as said."""
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
        prompts = ground_prompt(expressions) if isinstance(expressions, str) else [ground_prompt(e) for e in expressions]
        single, answers = self._many(images, prompts, **kwargs)
        image_list = as_list(images)[1]
        sizes = [load_rgb(im, kwargs.get("bands")).size for im in image_list]
        boxes = [parse_boxes(a, size, fmt="aerith") for a, size in zip(answers, sizes)]
        return boxes[0] if single else boxes


__all__ = [
    "RANDOM_INIT", "RANDOM_WEIGHTS_WARNING", "VLM", "ModelFolderError", "as_list", "load_saved", "check_device", "default_device", "holds_saved_model", "json_model_type", "prompts_for",
]
