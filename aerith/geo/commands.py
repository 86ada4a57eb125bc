"""Library function behind `aerith scan`: check the inputs, load the model, scan, report."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aerith.geo.scan import NotGeoreferencedWarning, ScanConfig, ScanResult, check_inputs, run_scan


def distributed_state() -> Any | None:
    """accelerate's ``PartialState`` when launched with several processes (``accelerate launch``), else None."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return None
    from accelerate import PartialState

    return PartialState()


def load_model(model: str, *, seed: int = 0, device: str | None = None) -> Any:
    """A preset name or a saved model folder, as every command loads it."""
    from aerith.infer.vlm import AerithVLM
    from aerith.models.presets import PRESETS

    kwargs: dict[str, Any] = {"device": device}
    if model in PRESETS:
        kwargs["seed"] = seed
    return AerithVLM.load(model, **kwargs)


def scan_command(
    model: str,
    raster: Path,
    config: ScanConfig,
    out: Path,
    *,
    overwrite: bool = False,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> ScanResult | None:
    """Run a scan from the command line; warnings go to ``echo`` as ``WARNING:`` lines.

    The raster and settings are checked before the model loads, so bad input fails fast.
    Returns the result on the main process, None on the others.
    """
    check_inputs(raster, config)
    state = distributed_state()
    if state is not None and device is None:
        device = str(state.device)
    vlm = load_model(model, seed=seed, device=device)
    main = state is None or state.is_main_process
    if getattr(vlm, "is_random_init", False):
        if hasattr(vlm, "_warned_random"):
            vlm._warned_random = True  # said here, once, where users see it
        if main:
            echo(f"WARNING: {model} has RANDOM weights: the scan's answers are noise, not predictions (the manifest and quicklook say so too)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotGeoreferencedWarning)
        try:
            result = run_scan(vlm, raster, config, out, overwrite=overwrite, progress=progress and main, state=state)
        finally:
            for w in caught:
                if issubclass(w.category, NotGeoreferencedWarning):
                    echo(f"WARNING: {w.message}")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result
