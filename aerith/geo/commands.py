"""Library function behind `aerith scan`: check the inputs, load the model, scan, report."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aerith.geo.errors import ScanError
from aerith.geo.scan import NotGeoreferencedWarning, ScanConfig, ScanResult, check_inputs, run_scan


def distributed_state() -> Any | None:
    """accelerate's ``PartialState`` when launched with several processes (``accelerate launch``), else None.

    Raises:
        ScanError: several processes were launched but accelerate set up fewer (each would scan every tile).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
    if state.num_processes != world:
        raise ScanError(
            f"launched as {world} processes (WORLD_SIZE) but accelerate set up {state.num_processes}: "
            "on a machine without GPUs launch with ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N"
        )
    return state


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

    The raster, settings and ``out`` are checked before the model loads (``aerith.load_vlm``: a preset,
    a saved model or a run folder of any model kind), so bad input fails fast.
    Returns the result on the main process, None on the others.
    """
    check_inputs(raster, config, out)
    state = distributed_state()
    if state is not None and device is None:
        device = str(state.device)
    from aerith.eval.distributed import Processes
    from aerith.eval.fingerprint import model_fingerprint
    from aerith.geo.journal import Journal
    from aerith.infer.load import load_vlm

    # as aerith eval records it (a preset's seed, a folder's files), hashed once: a 7B folder is read by one process
    procs = Processes() if state is None else Processes(rank=state.process_index, world=state.num_processes, state=state)
    fingerprint = procs.on_main(lambda: model_fingerprint(model, seed=seed))
    if not overwrite:
        Journal(out, {}).check_model(fingerprint)  # another model's scan is refused before this one loads
    vlm = load_vlm(model, seed=seed, device=device)
    main = state is None or state.is_main_process
    if vlm.is_random_init:
        vlm._warned_random = True  # the command says it itself, once, where users see it
        if main:
            echo(f"WARNING: {vlm.random_weights_warning} The manifest and quicklook of this scan say so too.")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NotGeoreferencedWarning)
        try:
            result = run_scan(
                vlm, raster, config, out, overwrite=overwrite, progress=progress and main, state=state,
                model_fingerprint=fingerprint,
            )
        finally:
            for w in caught:
                if issubclass(w.category, NotGeoreferencedWarning):
                    echo(f"WARNING: {w.message}")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return result
