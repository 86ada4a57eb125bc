"""What made the answers in a run folder: the model, its weights and the generation settings.

An evaluation folder is resumed only by the same model, weights and decoding settings: a
run's ``run.json`` records a fingerprint, and :func:`differences` names what changed so the
refusal can say it. The prompt of each answer is kept beside it in ``predictions.jsonl``
and compared there (see :mod:`aerith.eval.runner`).

The model is identified by content, not by path or date: the SHA-256 of every file of the
folder that decides an answer - ``config.json``, the weight files, the generation, processor
and tokenizer files and the chat template (for a 7B model in bf16, about 13 GiB read once per
``aerith eval`` call, some ten seconds on a local disk). A preset is identified by its name
and seed (a hub preset's weights are the hub's).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
# besides the weights, what changes an answer: decoding defaults, image processing, tokens, template
MODEL_FILES = frozenset({
    "config.json", "generation_config.json", "processor_config.json", "preprocessor_config.json",
    "tokenizer.json", "tokenizer_config.json", "tokenizer.model", "special_tokens_map.json", "added_tokens.json",
    "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "chat_template.jinja", "chat_template.json",
    "adapter_config.json",
})  # fmt: skip
_CHUNK = 1 << 22


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def folder_fingerprint(folder: Path) -> dict[str, Any]:
    """``{"path", "files", "sha256"}`` of a saved model folder: one digest over its weight and model files.

    Raises:
        FileNotFoundError: the folder has no ``config.json``.
    """
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json to fingerprint")
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and (p.name in MODEL_FILES or p.suffix in WEIGHT_SUFFIXES) and "accelerate_state" not in p.parts
    )
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.relative_to(folder).as_posix()}\0{file_sha256(p)}\n".encode())
    return {"path": str(folder.resolve()), "files": len(files), "sha256": digest.hexdigest()}


def model_fingerprint(model: str | Path, *, seed: int = 0) -> dict[str, Any]:
    """The fingerprint of what ``aerith.load_vlm(model, seed=seed)`` loads.

    Returns:
        ``{"preset": name, "seed": seed}`` for a preset; for a saved model or run folder
        ``{"path": resolved checkpoint folder, "files": n, "sha256": digest}``.

    Raises:
        FileNotFoundError: neither a preset nor a loadable folder.
    """
    from aerith.infer.load import all_presets
    from aerith.runs import resolve_checkpoint

    name = str(model)
    if name in all_presets():
        return {"preset": name, "seed": seed}
    return folder_fingerprint(resolve_checkpoint(Path(model)))


def weights_fingerprint(model: Any) -> dict[str, Any] | None:
    """``{"in_memory": True, "sha256"}`` over a loaded model's weights and decoding defaults, or None.

    The facade's torch model (``model.model``) is hashed tensor by tensor (name, dtype, shape,
    bytes; a 7B model in bf16 takes some seconds). ``None`` when ``model`` holds no torch module.
    """
    import torch

    module = getattr(model, "model", None)
    if not isinstance(module, torch.nn.Module):
        return None
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        data = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}\0{data.dtype}\0{tuple(data.shape)}\n".encode())
        digest.update(data.reshape(-1).view(torch.uint8).numpy())
    generation = getattr(module, "generation_config", None)
    if generation is not None:  # the settings, not the library version that wrote them
        settings = {k: v for k, v in generation.to_diff_dict().items() if k != "transformers_version"}
        digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    return {"in_memory": True, "sha256": digest.hexdigest()}


def loaded_model_fingerprint(model: Any) -> dict[str, Any]:
    """The fingerprint of a loaded model given without one (library calls of evaluate and scan).

    A facade loaded from a folder (its ``name`` is the folder) is fingerprinted by the folder's
    files, as ``aerith eval`` records it, so the two resume each other's runs. A facade does
    not keep a preset's seed, so any other torch model is hashed in memory. A model without
    torch weights is known by name only (``{"name"}``): pass a fingerprint to tell its versions apart.
    """
    from aerith.infer.load import all_presets

    name = str(getattr(model, "name", type(model).__name__))
    if name not in all_presets() and (Path(name) / "config.json").is_file():
        return folder_fingerprint(Path(name))
    if name not in all_presets() and Path(name).is_dir():
        from aerith.runs import resolve_checkpoint

        return folder_fingerprint(resolve_checkpoint(Path(name)))
    return weights_fingerprint(model) or {"name": name}


def describe(value: Any) -> str:
    """A fingerprint in words, for refusals."""
    if value is None:
        return "not recorded"
    if isinstance(value, Mapping) and value.get("in_memory"):
        return f"weights in memory (sha256 {str(value['sha256'])[:12]})"
    if isinstance(value, Mapping) and set(value) == {"name"}:
        return f"{value['name']} (known by name only)"
    if isinstance(value, Mapping) and "sha256" in value:
        return f"{value.get('path')} (model files sha256 {str(value['sha256'])[:12]})"
    if isinstance(value, Mapping) and "preset" in value:
        return f"preset {value['preset']} (seed {value.get('seed')})"
    return repr(value)


def differences(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """What differs between two ``run.json`` records, one phrase each (empty when they agree).

    Compared: benchmark, split, model name, model fingerprint and generation settings.
    ``batch_size`` is not compared: it changes only how answers are grouped.
    """
    out = []
    for key, what in (("benchmark", "benchmark"), ("split", "split"), ("model", "model name")):
        if old.get(key) != new.get(key):
            out.append(f"{what}: {old.get(key)!r} then, {new.get(key)!r} now")
    if old.get("model_fingerprint") != new.get("model_fingerprint"):
        out.append(
            f"model files: {describe(old.get('model_fingerprint'))} then, {describe(new.get('model_fingerprint'))} now"
        )
    old_gen, new_gen = old.get("generation"), new.get("generation")
    if old_gen != new_gen:
        if isinstance(old_gen, Mapping) and isinstance(new_gen, Mapping):
            keys = sorted(set(old_gen) | set(new_gen))
            changed = ", ".join(f"{k} {old_gen.get(k)!r} -> {new_gen.get(k)!r}" for k in keys if old_gen.get(k) != new_gen.get(k))
            out.append(f"generation settings: {changed}")
        else:
            out.append(f"generation settings: {old_gen!r} then, {new_gen!r} now")
    return out


__all__ = ["describe", "differences", "file_sha256", "folder_fingerprint", "loaded_model_fingerprint", "model_fingerprint", "weights_fingerprint"]
