"""``aerith.load_vlm``: one loader for every model kind, and the registry of kinds it knows.

What a name means is decided in this order, never from a folder's name:

1. a preset name (``aerith-tiny``, ``aerith-7b``, ``instructblip-tiny`` ...) builds that preset;
2. a folder with ``config.json`` is a saved model: its ``model_type`` picks the facade;
3. a training run folder loads its ``checkpoint-final`` (else its newest step checkpoint).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aerith.infer.facade import VLM, json_model_type
from aerith.runs import resolve_checkpoint


@dataclass(frozen=True)
class ModelKind:
    """A family of models behind the facade: its ``config.json`` model_type, presets and facade class."""

    model_type: str
    facade: Callable[[], type[VLM]]
    presets: Callable[[], list[str]]


def _aerith() -> type[VLM]:
    from aerith.infer.vlm import AerithVLM

    return AerithVLM


def _instructblip() -> type[VLM]:
    from aerith.infer.instructblip import InstructBlipVLM

    return InstructBlipVLM


def _aerith_presets() -> list[str]:
    from aerith.models.presets import list_presets

    return list_presets()


def _instructblip_presets() -> list[str]:
    from aerith.models.instructblip import INSTRUCTBLIP_PRESETS

    return sorted(INSTRUCTBLIP_PRESETS)


MODEL_KINDS: dict[str, ModelKind] = {
    "aerith": ModelKind("aerith", _aerith, _aerith_presets),
    "instructblip": ModelKind("instructblip", _instructblip, _instructblip_presets),
}


def all_presets() -> list[str]:
    """Every preset name of every model kind."""
    return sorted(name for kind in MODEL_KINDS.values() for name in kind.presets())


def saved_model_type(folder: Path) -> str:
    """The ``model_type`` of a saved model folder, checked against :data:`MODEL_KINDS`."""
    config = folder / "config.json"
    model_type = json_model_type(config)
    if model_type not in MODEL_KINDS:
        raise ValueError(f"{config}: model_type {model_type!r} is not one of {sorted(MODEL_KINDS)}")
    return model_type


def load_vlm(
    name_or_path: str | Path,
    *,
    seed: int = 0,
    device: Any = None,
    dtype: Any = None,
    load_in_4bit: bool = False,
) -> VLM:
    """A preset, a saved model folder or a run folder -> its facade (AerithVLM or InstructBlipVLM).

    Args:
        name_or_path: preset name (see :func:`all_presets`), a ``save_pretrained`` folder, or a
            run folder (its ``checkpoint-final``, else its newest ``checkpoint-N``).
        seed: seeds the random parts of a preset (ignored for saved models).
        device: ``cpu``, ``cuda``, ``cuda:1`` ...; default CUDA when present. A CUDA device on a
            machine without one is a ``ValueError``.
        dtype: weights' dtype (default float32 for saved models, the preset's choice otherwise).
        load_in_4bit: 4-bit language model through bitsandbytes (hub Aerith presets, CUDA only).

    Raises:
        FileNotFoundError: neither a preset nor an existing folder; the message lists the presets.
        ValueError: a folder whose config names no known model kind, or a bad device.
    """
    name = str(name_or_path)
    for kind in MODEL_KINDS.values():
        if name in kind.presets():
            options: dict[str, Any] = {"seed": seed, "device": device, "dtype": dtype}
            if load_in_4bit:
                options["load_in_4bit"] = True
            return kind.facade().from_preset(name, **options)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"{name!r} is neither a preset ({', '.join(all_presets())}) nor an existing model or run folder"
        )
    folder = resolve_checkpoint(path)
    if load_in_4bit:
        raise ValueError("load_in_4bit applies to hub presets; a saved folder loads in the dtype given")
    return MODEL_KINDS[saved_model_type(folder)].facade().from_pretrained(folder, device=device, dtype=dtype)


__all__ = ["MODEL_KINDS", "ModelKind", "all_presets", "load_vlm", "saved_model_type"]
