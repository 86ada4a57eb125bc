"""Library functions behind `aerith predict`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aerith.infer.load import load_vlm


def predict(
    model: str,
    image: Path,
    prompt: str,
    *,
    max_new_tokens: int = 64,
    bands: Sequence[int] | None = None,
    seed: int = 0,
    device: str | None = None,
) -> tuple[str, str | None]:
    """Answer ``prompt`` about ``image`` with any model kind; returns ``(answer, warning or None)``."""
    if max_new_tokens < 1:  # before the model loads (generate's own message named its argument, not the option)
        raise ValueError(f"--max-new-tokens must be >= 1, got {max_new_tokens}")
    vlm = load_vlm(model, seed=seed, device=device)
    vlm._warned_random = True  # the command prints the warning itself, once, where users see it
    answer = vlm.generate(image, prompt, max_new_tokens=max_new_tokens, bands=bands)
    return answer, vlm.random_weights_warning
