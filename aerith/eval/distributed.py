"""The processes an evaluation runs on: one, or several started by ``accelerate launch``.

:class:`Processes` carries the rank and world size explicitly (no global state in the
runner) and the few collective steps evaluation needs: run a step on the main process and
share its result (or its error) with every process, and gather small results. A bad-input
error on one process becomes the same error on every process, so none is left waiting
at a collective for a process that gave up.

Sharding is by batch: the samples still to answer are cut into batches of ``batch_size``
exactly as one process cuts them, and batch ``k`` goes to process ``k % world``. Every
batch holds the same samples as in a one-process run, so left padding, and therefore every
answer, is the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Errors that are a user's bad input (DataError is a ValueError); shared with every process.
SHARED_ERRORS: tuple[type[BaseException], ...] = (ValueError, KeyError, FileNotFoundError, OSError, TypeError)


@dataclass(frozen=True)
class Processes:
    """The rank of this process among ``world`` evaluation processes.

    Attributes:
        rank: 0-based index of this process; rank 0 is the main process.
        world: number of processes.
        state: accelerate's ``PartialState`` when ``world > 1`` (its process group does the
            collectives), else ``None``.
    """

    rank: int = 0
    world: int = 1
    state: Any = None

    def __post_init__(self) -> None:
        if self.world < 1 or not 0 <= self.rank < self.world:
            raise ValueError(f"rank {self.rank} of {self.world} processes is not a valid rank")
        if self.world > 1 and self.state is None:
            raise ValueError("several processes need accelerate's PartialState for their collectives")

    @classmethod
    def from_environment(cls) -> Processes:
        """One process, or the group ``accelerate launch`` (torchrun) started: ``WORLD_SIZE`` > 1.

        Raises:
            ValueError: several processes were launched but accelerate set up fewer (each
                would answer every sample into the same folder).
        """
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world <= 1:
            return cls()
        from accelerate import PartialState
        from accelerate.utils import parse_flag_from_env

        # the launcher's `--cpu` reaches the processes as this variable; without it a CPU-only group is not set up
        state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
        if state.num_processes != world:
            raise ValueError(
                f"launched as {world} processes (WORLD_SIZE) but accelerate set up {state.num_processes}: "
                "on a machine without GPUs launch with ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N"
            )
        return cls(rank=state.process_index, world=state.num_processes, state=state)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def device(self) -> Any:
        """This process's device under ``accelerate launch`` (its own GPU, or the CPU), else ``None``."""
        return self.state.device if self.state is not None else None

    def barrier(self) -> None:
        if self.world > 1:
            self.state.wait_for_everyone()

    def shard(self, batches: Sequence[T]) -> list[T]:
        """This process's batches: every ``world``-th one, starting at its rank."""
        return list(batches[self.rank :: self.world])

    def on_main(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the main process and return its result on every process.

        A bad-input error raised by ``fn`` is raised on every process (the same type where
        it is a built-in one, else ``ValueError``), with the same message.
        """
        if self.world == 1:
            return fn()
        from accelerate.utils import broadcast_object_list

        payload: list[Any] = [None]
        if self.main:
            try:
                payload = [("ok", fn())]
            except SHARED_ERRORS as err:
                broadcast_object_list([("error", _error_kind(err), _message(err))])
                raise
        payload = broadcast_object_list(payload)
        status, *rest = payload[0]
        if status == "error":
            kind, message = rest
            raise _rebuild(kind, message)
        return rest[0]

    def gather(self, value: Any, error: BaseException | None = None) -> list[Any]:
        """Every process's ``value``, in rank order, on every process.

        ``error``: this process's bad-input error, if it had one. When any process had one,
        every process raises (this one its own error, the others a ``ValueError`` naming the
        process that failed and its message).
        """
        if self.world == 1:
            if error is not None:
                raise error
            return [value]
        from accelerate.utils import gather_object

        entries = gather_object([(self.rank, value, None if error is None else _message(error))])
        if error is not None:
            raise error
        failed = [(rank, message) for rank, _, message in entries if message is not None]
        if failed:
            rank, message = failed[0]
            raise ValueError(f"evaluation process {rank} of {self.world} failed: {message}")
        return [v for _, v, _ in sorted(entries, key=lambda e: e[0])]


def _message(err: BaseException) -> str:
    return str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)


_KINDS: dict[str, type[BaseException]] = {
    "KeyError": KeyError,
    "FileNotFoundError": FileNotFoundError,
    "TypeError": TypeError,
    "OSError": OSError,
}


def _error_kind(err: BaseException) -> str:
    return type(err).__name__ if type(err).__name__ in _KINDS else "ValueError"


def _rebuild(kind: str, message: str) -> BaseException:
    return _KINDS.get(kind, ValueError)(message)


__all__ = ["SHARED_ERRORS", "Processes"]
