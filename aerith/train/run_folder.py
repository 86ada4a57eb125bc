"""The run folder: its layout, the checks before a run starts, and exact resumption or a clear refusal.

A run folder holds ``config.yaml`` (the resolved recipe), ``metrics.jsonl``,
``tensorboard/``, step checkpoints ``checkpoint-NNNNNN/`` and ``checkpoint-final/``.
A step checkpoint is the model in the ``save_pretrained`` format plus
``trainer_state.json`` (step, provenance, world size ...) and ``accelerate_state/``
(optimizer, scheduler and every process's RNG state).

Everything here runs before any model or data loads, so a run that cannot start (an
unwritable folder, a run already there) or cannot resume exactly is refused at once,
and a refused resume changes nothing in the folder. ``--resume`` is refused when:

- the recipe differs from the run's ``config.yaml`` in a field the results depend on
  (every field except :data:`CHANGEABLE_ON_RESUME`, and for SCST with ``scst.kl > 0`` also
  ``model.init`` and ``model.seed``, which build its KL reference); the message names each differing key;
- the newest checkpoint's ``trainer_state.json`` or one of its ``accelerate_state`` files
  is missing or unreadable, or this process's RNG state is incomplete (a run without
  it would not continue as the uninterrupted one); the message names the file;
- the number of processes differs from the one that wrote the checkpoint;
- ``schedule.max_steps`` is not above the newest checkpoint's step, or not above the step of a
  finished run's ``checkpoint-final`` (the resume would replace it with fewer steps);
- ``schedule.max_minutes`` is not above the training time of a finished run's ``checkpoint-final``
  (the resume would train again to the same limit and replace it).

To continue anyway from such a checkpoint's weights, start a new run from them
(``--init RUN/checkpoint-N --out-dir NEW``): an explicit, non-exact restart.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aerith.runs import CHECKPOINT_PREFIX, FINAL, STATE_FILE, checkpoints
from aerith.train.config import TrainConfig, load_config

CONFIG_FILE = "config.yaml"
ACCELERATE_STATE = "accelerate_state"

# Recipe fields a resumed run may change: where the run is, how long it runs (under a decaying
# schedule the learning rate from the resume point on follows the new length), what it logs
# and how often it checkpoints, the loader's worker count (the data order does not depend on
# it), and the starting model (on resume the weights come from the checkpoint; but see changeable_on_resume).
CHANGEABLE_ON_RESUME = (
    "out_dir",
    "model.init",
    "model.seed",
    "schedule.max_steps",
    "schedule.max_minutes",
    "checkpoint",
    "logging",
    "data.num_workers",
)
_RNG_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")


class RunFolderError(ValueError):
    """The run folder cannot be used as asked (not writable, not a folder)."""


class ResumeError(ValueError):
    """The run cannot resume exactly; the message names the file or the recipe keys and what to do."""


@dataclass
class RunStart:
    """Where a run starts: a fresh run (``checkpoint`` is ``None``) or a checkpoint and its state.

    Attributes:
        run_dir: the run folder (exists and is writable).
        checkpoint: the checkpoint to resume from.
        state: its ``trainer_state.json``.
        rng_file: this process's RNG state in it, checked complete (see :func:`check_rng_restored`).
        rng: the states that file holds.
    """

    run_dir: Path
    checkpoint: Path | None = None
    state: dict[str, Any] = field(default_factory=dict)
    rng_file: Path | None = None
    rng: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))


def open_run(config: TrainConfig, *, resume: bool, rank: int, world: int) -> RunStart:
    """Check the run folder for a fresh run or an exact resume; creates the folder, writes nothing else.

    Raises:
        FileNotFoundError: ``resume`` but no step checkpoint in the folder.
        FileExistsError: not ``resume`` but the folder already holds a run.
        RunFolderError: the folder cannot be created or written to.
        ResumeError: the run cannot continue exactly (see the module docstring).
    """
    run_dir = Path(config.out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunFolderError(f"out_dir {run_dir} exists and is not a folder")
    existing = checkpoints(run_dir) if run_dir.is_dir() else []
    if resume and not existing:
        raise FileNotFoundError(f"--resume: {run_dir} has no {CHECKPOINT_PREFIX}N folder to resume from")
    if not resume and (existing or (run_dir / FINAL).exists()):
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it or choose another out_dir")
    if not resume:
        check_no_foreign_files(run_dir)
    check_writable(run_dir)
    if not resume:
        return RunStart(run_dir)
    check_recipe(config, run_dir / CONFIG_FILE)
    ckpt = existing[-1]
    state = read_state(ckpt / STATE_FILE)
    check_steps_left(config, ckpt, state["step"])
    saved_world = state.get("world_size", 1)
    if saved_world != world:
        raise ResumeError(
            f"--resume: {ckpt} was written by {saved_world} process(es), this run has {world}; resume with "
            f"{saved_world} so that every process gets its own RNG state and data back"
        )
    rng_file = ckpt / ACCELERATE_STATE / f"random_states_{rank}.pkl"
    for name in ("optimizer.bin", "scheduler.bin"):
        path = ckpt / ACCELERATE_STATE / name
        if not path.is_file() or path.stat().st_size == 0:
            raise ResumeError(f"--resume: {path} is {'empty' if path.is_file() else 'missing'}; {_START_OVER.format(ckpt=ckpt)}")
    return RunStart(run_dir, ckpt, state, rng_file, read_rng_state(rng_file))


_START_OVER = (
    "the run cannot continue exactly from {ckpt}. Delete it to resume from the checkpoint before it, or start a "
    "new run from its weights (--init {ckpt} --out-dir NEW), which does not continue the optimizer, schedule or RNG"
)


# What a run writes into its folder besides checkpoints (a run stopped before its first checkpoint leaves these).
RUN_FILES = frozenset({CONFIG_FILE, "metrics.jsonl", "tensorboard", "cider_df.json"})


def check_no_foreign_files(run_dir: Path) -> None:
    """A new run starts in an absent or empty folder, or in one holding only what a run writes (one that stopped
    before its first checkpoint): it would overwrite a ``config.yaml`` or ``metrics.jsonl`` of anything else.

    Raises:
        FileExistsError: naming the folder and what it holds.
    """
    if not run_dir.is_dir():
        return
    foreign = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith(".") and p.name not in RUN_FILES)
    config = run_dir / CONFIG_FILE
    if config.exists() and not _is_recipe(config):
        foreign.insert(0, CONFIG_FILE)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise FileExistsError(
            f"out_dir {run_dir} holds files that are not a training run's ({shown}); a new run starts in a new or "
            "empty folder: choose another out_dir"
        )


def _is_recipe(path: Path) -> bool:
    """Whether ``path`` reads as the resolved recipe a run writes (a YAML mapping with a stage and an out_dir)."""
    try:
        import yaml

        tree = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError):
        return False
    return isinstance(tree, dict) and "stage" in tree and "out_dir" in tree


def check_steps_left(config: TrainConfig, ckpt: Path, step: int) -> None:
    """A resume must train past its checkpoint and past a finished run's ``checkpoint-final``, in steps and,
    under a time limit, in time: a resume to fewer steps, or to a limit its final checkpoint already
    reached, would cut ``metrics.jsonl`` and replace the final weights with older ones."""
    max_steps = config.schedule.max_steps
    if step >= max_steps:
        raise ResumeError(
            f"--resume: the newest checkpoint {ckpt} is at step {step} and schedule.max_steps is {max_steps}: "
            f"nothing is left to train. Give --max-steps above {step} to train on; the weights at step {step} are in {ckpt}"
        )
    final = ckpt.parent / FINAL
    try:
        final_state = json.loads((final / STATE_FILE).read_text(encoding="utf-8"))
        final_step = final_state["step"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        return  # no finished run (or one whose step cannot be read: the step checkpoint above decides)
    if isinstance(final_step, int) and final_step >= max_steps:
        raise ResumeError(
            f"--resume: the run is finished: {final} holds step {final_step} and schedule.max_steps is {max_steps}; "
            f"a resume would replace it. Give --max-steps above {final_step} to train on, or start a new run from "
            f"its weights (--init {final} --out-dir NEW)"
        )
    seconds, max_minutes = final_state.get("train_seconds"), config.schedule.max_minutes
    if max_minutes is not None and isinstance(seconds, int | float) and seconds >= max_minutes * 60:
        # it would train again from the step checkpoint until the same limit, and replace the final weights
        # with those of about as many steps (fewer on a slower machine)
        raise ResumeError(
            f"--resume: the run is finished: {final} holds step {final_step} after {seconds / 60:.2f} minutes of training, "
            f"and schedule.max_minutes is {max_minutes}; a resume would replace it. Give --set schedule.max_minutes above "
            f"{seconds / 60:.2f} (or null) to train on, or start a new run from its weights (--init {final} --out-dir NEW)"
        )


def check_writable(run_dir: Path) -> None:
    """Create ``run_dir`` and write (then remove) a probe file in it, before anything slow happens."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-test-", dir=run_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise RunFolderError(f"out_dir {run_dir} cannot be written to: {err.strerror or err}") from err


def read_state(path: Path) -> dict[str, Any]:
    """A checkpoint's ``trainer_state.json``, or :class:`ResumeError` naming it."""
    ckpt = path.parent
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ResumeError(f"--resume: {path} is missing; {_START_OVER.format(ckpt=ckpt)}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResumeError(f"--resume: {path} cannot be read ({err}); {_START_OVER.format(ckpt=ckpt)}") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int) or isinstance(state["step"], bool):
        raise ResumeError(f"--resume: {path} holds no integer 'step'; {_START_OVER.format(ckpt=ckpt)}")
    return state


def read_rng_state(path: Path) -> dict[str, Any]:
    """One process's RNG states, read as accelerate reads them (weights-only unpickling), checked complete.

    accelerate's ``load_state`` skips an unreadable RNG file with an info-level log line and
    continues; this check makes that a refusal naming the file.
    """
    from accelerate.utils import load

    ckpt = path.parent.parent
    if not path.is_file():
        raise ResumeError(f"--resume: the RNG state {path} is missing; {_START_OVER.format(ckpt=ckpt)}")
    try:
        states = load(path)
    except Exception as err:  # torch.load raises many types (UnpicklingError, RuntimeError, EOFError ...)
        raise ResumeError(f"--resume: the RNG state {path} cannot be read ({type(err).__name__}: {err}); {_START_OVER.format(ckpt=ckpt)}") from None
    missing = [k for k in _RNG_KEYS if not isinstance(states, dict) or k not in states]
    if torch.cuda.is_available() and isinstance(states, dict) and "torch_cuda_manual_seed" not in states:
        missing.append("torch_cuda_manual_seed (the checkpoint was written without CUDA)")
    if missing:
        raise ResumeError(f"--resume: the RNG state {path} lacks {', '.join(missing)}; {_START_OVER.format(ckpt=ckpt)}")
    return states


def check_rng_restored(start: RunStart) -> None:
    """After ``accelerator.load_state``: this process's RNGs hold exactly the states of its file."""
    states, path = start.rng, start.rng_file
    np_now, np_saved = np.random.get_state(), states["numpy_random_seed"]
    same = (
        random.getstate() == states["random_state"]
        and np_now[0] == np_saved[0]
        and np.array_equal(np_now[1], np_saved[1])
        and tuple(np_now[2:]) == tuple(np_saved[2:])
        and torch.equal(torch.get_rng_state(), states["torch_manual_seed"])
    )
    if same and torch.cuda.is_available():
        saved = states["torch_cuda_manual_seed"]
        same = all(torch.equal(a, b) for a, b in zip(torch.cuda.get_rng_state_all(), saved, strict=False))
    if not same:
        raise ResumeError(
            f"--resume: the RNG state {path} was not restored (accelerate skipped it); "
            f"{_START_OVER.format(ckpt=start.checkpoint)}"
        )


def check_recipe(config: TrainConfig, saved_path: Path) -> None:
    """The recipe of a resumed run must equal the run's ``config.yaml`` outside :data:`CHANGEABLE_ON_RESUME`."""
    if not saved_path.is_file():
        raise ResumeError(
            f"--resume: {saved_path} is missing, so the recipe cannot be checked against the run's; "
            "put the run's recipe back there (it is written when a run starts)"
        )
    try:
        saved = load_config(saved_path)
    except (ValueError, OSError) as err:
        raise ResumeError(f"--resume: the run's recipe cannot be read: {err}") from None
    changeable = changeable_on_resume(config)
    changed = [
        (key, old, new)
        for key, old, new in diff_trees(saved.to_dict(), config.to_dict())
        if not any(key == c or key.startswith(c + ".") for c in changeable)
    ]
    if changed:
        shown = "; ".join(f"{k}: {_show(old)} -> {_show(new)}" for k, old, new in changed[:10])
        more = f" (and {len(changed) - 10} more)" if len(changed) > 10 else ""
        why = _KL_REFERENCE if any(key in _STARTING_MODEL for key, _, _ in changed) and changeable != CHANGEABLE_ON_RESUME else ""
        raise ResumeError(
            f"--resume: the recipe differs from the run's {saved_path} in what the results depend on: {shown}{more}. "
            f"On resume only {', '.join(changeable)} may change{why}; to change the others, start a new run "
            "(another out_dir, --init a checkpoint of this one)"
        )


_STARTING_MODEL = ("model.init", "model.seed")
_KL_REFERENCE = (
    " (not model.init and model.seed: with scst.kl > 0 they build the frozen starting model the KL penalty "
    "holds the policy near; resume with the run's own, e.g. its --init)"
)


def changeable_on_resume(config: TrainConfig) -> tuple[str, ...]:
    """:data:`CHANGEABLE_ON_RESUME`, less ``model.init`` and ``model.seed`` for SCST with a KL penalty, whose
    reference model is rebuilt from them on resume (a change would silently swap it)."""
    if config.stage == "scst" and config.scst.kl > 0:
        return tuple(c for c in CHANGEABLE_ON_RESUME if c not in _STARTING_MODEL)
    return CHANGEABLE_ON_RESUME


_ABSENT = object()


def _show(value: Any) -> str:
    return "(absent)" if value is _ABSENT else repr(value)


def _leaves(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and values of nested dicts (and lists of dicts, by index); other lists are values."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(tree, list) and tree and all(isinstance(v, dict) for v in tree):
        for i, value in enumerate(tree):
            yield from _leaves(value, f"{prefix}.{i}")
    else:
        yield prefix, tree


def diff_trees(old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """``(dotted key, old value, new value)`` for every leaf that differs (absent on one side included)."""
    a, b = dict(_leaves(old)), dict(_leaves(new))
    keys = list(a) + [k for k in b if k not in a]
    return [(k, a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in keys if a.get(k, _ABSENT) != b.get(k, _ABSENT)]
