"""Library functions behind `aerith predict`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aerith.infer.vlm import RANDOM_WEIGHTS_WARNING, AerithVLM


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
    """Answer ``prompt`` about ``image``; returns ``(answer, warning or None)``."""
    kwargs = {"device": device}
    from aerith.models.presets import PRESETS

    if model in PRESETS:
        kwargs["seed"] = seed
    vlm = AerithVLM.load(model, **kwargs)
    vlm._warned_random = True  # the command prints the warning itself, once, where users see it
    answer = vlm.generate(image, prompt, max_new_tokens=max_new_tokens, bands=bands)
    warning = None
    if vlm.is_random_init:
        warning = RANDOM_WEIGHTS_WARNING.format(name=model, state=vlm.model.config.training_state)
    return answer, warning
