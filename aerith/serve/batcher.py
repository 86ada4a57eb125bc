"""Dynamic batching: one worker thread owns the model and generates queued requests together.

The :class:`Batcher` is the in-process API that every front end shares (the HTTP server, a
web UI mounted beside it): prepare a request with the :class:`~aerith.serve.engine.Engine`,
then ::

    future = batcher.submit(prepared, settings)            # concurrent.futures.Future[Completion]
    for delta in batcher.stream(prepared, settings): ...   # the same, as text pieces

How batches form: the worker takes the oldest waiting request. While other requests are
still being prepared (announced with :meth:`Batcher.arriving`: the server decodes images and
tokenises before it submits), it waits for them, until ``window_ms`` after the oldest
request arrived (not after the worker got to it) or until ``max_batch`` compatible requests
wait; then it generates them together. With nothing on its way a request starts at once,
so a lone client pays no window. Requests that queue while a batch runs form the next one
(clients that each wait for their answer before asking again can settle into alternating
batches, e.g. 28 and 4 for 32 such clients; throughput still scales, see
``benchmarks/bench_serve.py``). Compatible means an
equal :meth:`GenerationSettings.batch_key`: every greedy request batches with every other
greedy one (rows keep their own ``max_tokens`` and stop strings), sampling requests with
the same temperature and top_p, and a seeded request runs alone. Requests that do not fit
stay queued in arrival order.

A batch that fails is retried one request at a time, so one bad request fails alone
(requests that already streamed text are failed rather than repeated). At most
``max_queue`` requests wait; more raise :class:`QueueFullError` at once.

:meth:`Batcher.cancel` drops a request whose reader went away (a streaming client that
disconnected, a :meth:`Batcher.stream` closed early): a queued one leaves the queue, one
being generated ends at its next token, so its batch no longer runs on for it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

from aerith.serve.engine import Completion, Engine, GenerationSettings, PreparedInput, Row, TextSink
from aerith.serve.metrics import Metrics

logger = logging.getLogger(__name__)


class QueueFullError(RuntimeError):
    """The queue holds ``max_queue`` requests; ``retry_after`` is a guess in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ClosedError(RuntimeError):
    """The batcher is shutting down (or was never started) and takes no new requests."""


@dataclass
class _Job:
    row: Row
    future: Future
    arrived: float
    streamed: bool = False
    key: object = field(init=False)

    def __post_init__(self) -> None:
        self.key = self.row.settings.batch_key()


class Batcher:
    """A request queue in front of one :class:`Engine`, served by one worker thread.

    Args:
        engine: the model; only the worker thread calls its ``generate``.
        max_batch: most requests generated together.
        window_ms: how long a request may wait for others to join its batch.
        max_queue: most requests waiting (not yet generating).
        metrics: where queue depth, batch sizes and generation times are recorded.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 16,
        window_ms: float = 10.0,
        max_queue: int = 256,
        metrics: Metrics | None = None,
    ) -> None:
        if max_batch < 1 or max_queue < 1 or window_ms < 0:
            raise ValueError(f"need max_batch >= 1, max_queue >= 1, window_ms >= 0; got {max_batch}, {max_queue}, {window_ms}")
        self.engine = engine
        self.max_batch = max_batch
        self.window = window_ms / 1000.0
        self.max_queue = max_queue
        self.metrics = metrics
        self._pending: deque[_Job] = deque()
        self._batch: list[_Job] = []
        self._cond = threading.Condition()
        self._accepting = False
        self._running = 0
        self._arriving = 0
        self._seconds_per_request = 0.05  # a first guess for Retry-After, learnt from batches
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------------
    def start(self) -> Batcher:
        """Start the worker thread; returns ``self``."""
        with self._cond:
            if self._thread is not None:
                raise RuntimeError("the batcher is already started")
            self._accepting = True
            self._thread = threading.Thread(target=self._work, name="aerith-batcher", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float | None = None) -> bool:
        """Take no new requests, finish every accepted one, stop the worker; ``False`` if ``timeout`` ran out."""
        with self._cond:
            self._accepting = False
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def accepting(self) -> bool:
        return self._accepting

    @property
    def queue_depth(self) -> int:
        """Requests waiting for a batch."""
        return len(self._pending)

    @property
    def running(self) -> int:
        """Requests being generated now."""
        return self._running

    # -- submitting -----------------------------------------------------------------------------------
    @contextmanager
    def arriving(self, n: int = 1) -> Iterator[None]:
        """Announce ``n`` requests being prepared, to be submitted inside the block; batches wait for them (up to the window)."""
        with self._cond:
            self._arriving += n
        try:
            yield
        finally:
            with self._cond:
                self._arriving -= n
                self._cond.notify_all()

    def submit(self, prepared: PreparedInput, settings: GenerationSettings, sink: TextSink | None = None) -> Future:
        """Queue one request; its future gives a :class:`Completion`. ``sink`` receives streamed text.

        Raises:
            QueueFullError: ``max_queue`` requests already wait.
            ClosedError: the batcher is not taking requests.
        """
        return self.submit_many([(prepared, settings, sink)])[0]

    def submit_many(
        self, requests: Sequence[tuple[PreparedInput, GenerationSettings, TextSink | None]]
    ) -> list[Future]:
        """Queue several requests at once: all of them, or none when the queue has no room for all."""
        now = time.monotonic()
        jobs = [_Job(Row(p, s, sink), Future(), now) for p, s, sink in requests]
        with self._cond:
            if not self._accepting:
                raise ClosedError("the server is shutting down and takes no new requests")
            if len(self._pending) + len(jobs) > self.max_queue:
                wait = (len(self._pending) + self._running) * self._seconds_per_request
                raise QueueFullError(
                    f"the queue is full ({len(self._pending)} waiting, --max-queue {self.max_queue}); retry later",
                    retry_after=max(1, round(wait + 0.5)),
                )
            self._pending.extend(jobs)
            self._set_depth()
            self._cond.notify_all()
        return [j.future for j in jobs]

    def cancel(self, future: Future) -> bool:
        """Stop working for the request of ``future`` (from :meth:`submit`): nobody will read its answer.

        A queued request leaves the queue (its future is cancelled); one being generated ends at its
        next token (its future then holds the text so far, ``finish_reason="cancelled"``). Returns
        ``False`` when the request is already finished (or not this batcher's).
        """
        with self._cond:
            for job in self._pending:
                if job.future is future:
                    self._pending.remove(job)
                    future.cancel()
                    self._set_depth()
                    self._cond.notify_all()
                    return True
            for job in self._batch:
                if job.future is future and not future.done():
                    job.row.cancel.set()
                    return True
        return False

    def generate(self, prepared: PreparedInput, settings: GenerationSettings, timeout: float | None = None) -> Completion:
        """Submit and wait for the answer."""
        return self.submit(prepared, settings).result(timeout)

    def stream(self, prepared: PreparedInput, settings: GenerationSettings) -> Iterator[str]:
        """Submit and yield the answer's text as it is generated; the generator's return value is the Completion.

        Closing the generator before the end cancels the request (:meth:`cancel`).
        """
        pieces: queue.SimpleQueue = queue.SimpleQueue()
        future = self.submit(prepared, settings, sink=lambda text: pieces.put(text))
        future.add_done_callback(lambda _f: pieces.put(None))
        try:
            while (piece := pieces.get()) is not None:
                yield piece
        finally:
            if not future.done():
                self.cancel(future)
        return future.result()

    # -- the worker -----------------------------------------------------------------------------------
    def _set_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(len(self._pending))
            self.metrics.running.set(self._running)

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._pending:
                if not self._accepting:
                    return None
                self._cond.wait()
            first = self._pending[0]
            if first.key is not None:
                deadline = first.arrived + self.window
                while self._accepting and self._arriving > 0 and self._count(first.key) < self.max_batch:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
            batch = [self._pending.popleft()]
            if first.key is not None:
                keep: deque[_Job] = deque()
                while self._pending and len(batch) < self.max_batch:
                    job = self._pending.popleft()
                    (batch if job.key == first.key else keep).append(job)
                self._pending.extendleft(reversed(keep))
            self._running = len(batch)
            self._batch = batch
            self._set_depth()
            return batch

    def _count(self, key: object) -> int:
        return sum(1 for j in self._pending if j.key == key)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            live = [j for j in batch if j.future.set_running_or_notify_cancel()]
            if live:
                self._run(live)
            with self._cond:
                self._running = 0
                self._batch = []
                self._set_depth()

    def _run(self, jobs: list[_Job]) -> None:
        for job in jobs:
            sink = job.row.sink
            if sink is not None:
                job.row = Row(job.row.prepared, job.row.settings, self._marking(job, sink), job.row.cancel)
        tic = time.perf_counter()
        try:
            completions = self.engine.generate([j.row for j in jobs])
        except Exception as err:  # noqa: BLE001 - a failed batch must not take the worker down
            if len(jobs) == 1:
                jobs[0].future.set_exception(err)
                return
            logger.warning("a batch of %d failed (%s); retrying its requests one by one", len(jobs), err)
            for job in jobs:
                if job.row.cancel.is_set():  # nobody reads it: not worth a retry
                    job.future.set_exception(RuntimeError(f"generation failed after the request was cancelled: {err}"))
                elif job.streamed:
                    job.future.set_exception(RuntimeError(f"generation failed after streaming began: {err}"))
                else:
                    self._run([job])
            return
        seconds = time.perf_counter() - tic
        self._seconds_per_request = 0.8 * self._seconds_per_request + 0.2 * seconds / len(jobs)
        if self.metrics is not None:
            self.metrics.observe_batch(len(jobs), seconds, sum(c.completion_tokens for c in completions))
        for job, completion in zip(jobs, completions):
            job.future.set_result(completion)

    @staticmethod
    def _marking(job: _Job, sink: TextSink) -> TextSink:
        def wrapped(text: str) -> None:
            job.streamed = True
            try:
                sink(text)
            except Exception as err:  # noqa: BLE001 - a reader that went away must not fail the batch
                logger.debug("a stream's reader failed: %s", err)

        return wrapped


__all__ = ["Batcher", "ClosedError", "QueueFullError"]
