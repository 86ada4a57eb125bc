"""The layout of a training run folder, shared by training (which writes it) and loading (which reads it).

``RUN/checkpoint-000040/`` (step checkpoints, with optimizer state), ``RUN/checkpoint-final/``
(the model at the end), each a ``save_pretrained`` folder with ``trainer_state.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHECKPOINT_PREFIX = "checkpoint-"
FINAL = "checkpoint-final"
STATE_FILE = "trainer_state.json"


def checkpoints(run_dir: Path) -> list[Path]:
    """Step checkpoints of a run, oldest first (``checkpoint-final`` not included)."""
    found = [p for p in Path(run_dir).glob(f"{CHECKPOINT_PREFIX}*") if p.is_dir() and p.name[len(CHECKPOINT_PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(CHECKPOINT_PREFIX) :]))


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its ``checkpoint-final`` (else, while it has none, its newest step checkpoint);
    a model folder -> itself.

    Raises:
        FileNotFoundError: ``path`` is neither, naming what was looked for.
    """
    path = Path(path)
    if (path / "config.json").is_file():
        return path
    if (path / FINAL / "config.json").is_file():
        return path / FINAL
    if (path / FINAL).is_dir():  # damaged: never an older step's weights in its place without a word
        found = checkpoints(path)
        hint = f"; to use the newest step checkpoint, pass {found[-1]}" if found else ""
        raise FileNotFoundError(f"{path} is a run folder, but {path / FINAL} has no config.json (a damaged run){hint}")
    found = checkpoints(path) if path.is_dir() else []
    if found:
        return found[-1]
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    raise FileNotFoundError(
        f"{path}: no config.json; expected a folder written by save_pretrained or a checkpoint, "
        f"or a run folder holding {FINAL}/"
    )


def saved_dtype(model: str | Path) -> Any:
    """The ``torch.dtype`` a saved model's (or run's) config.json records, so that a rewrite keeps it
    (bf16 stays bf16); ``None`` when it records none or cannot be read."""
    import json

    import torch

    try:
        name = json.loads((resolve_checkpoint(model) / "config.json").read_text(encoding="utf-8")).get("dtype")
    except (OSError, ValueError, AttributeError):
        return None
    value = getattr(torch, name, None) if isinstance(name, str) else None
    return value if isinstance(value, torch.dtype) else None


__all__ = ["CHECKPOINT_PREFIX", "FINAL", "STATE_FILE", "checkpoints", "resolve_checkpoint", "saved_dtype"]
