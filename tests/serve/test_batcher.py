"""The batching queue on its own, with a stand-in engine: grouping, windows, failures, limits, shutdown."""

from __future__ import annotations

import threading
import time

import pytest

from aerith.serve.batcher import Batcher, ClosedError, QueueFullError
from aerith.serve.engine import Completion, GenerationSettings, PreparedInput, Row


class FakeEngine:
    """Answers each row with its prompt; records batches; fails a batch holding a "poison" row."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.gate = gate

    def generate(self, rows: list[Row]) -> list[Completion]:
        if self.gate is not None:
            self.gate.wait(10)
        prompts = [r.prepared.prompt for r in rows]
        self.batches.append(prompts)
        if "poison" in prompts:
            raise RuntimeError("poisoned batch")
        for r in rows:
            if r.sink is not None:
                r.sink(r.prepared.prompt[:2])
                r.sink(r.prepared.prompt[2:])
        return [Completion(r.prepared.prompt, "stop", 1, 1) for r in rows]


def prepared(text: str) -> PreparedInput:
    return PreparedInput(prompt=text, prompt_tokens=1)


GREEDY = GenerationSettings(max_tokens=4)


def test_requests_in_the_window_batch_together_and_incompatible_ones_apart():
    engine = FakeEngine()
    batcher = Batcher(engine, max_batch=8, window_ms=200).start()
    sampled = GenerationSettings(max_tokens=4, temperature=0.7)
    seeded = GenerationSettings(max_tokens=4, temperature=0.7, seed=1)
    futures = batcher.submit_many(
        [(prepared(f"g{i}"), GenerationSettings(max_tokens=4 + i), None) for i in range(3)]
        + [(prepared("s0"), sampled, None), (prepared("seeded0"), seeded, None), (prepared("seeded1"), seeded, None), (prepared("s1"), sampled, None)]
    )
    assert [f.result(10).text for f in futures] == ["g0", "g1", "g2", "s0", "seeded0", "seeded1", "s1"]
    batcher.close()
    assert engine.batches == [["g0", "g1", "g2"], ["s0", "s1"], ["seeded0"], ["seeded1"]]


def test_max_batch_splits_and_order_is_kept():
    engine = FakeEngine()
    batcher = Batcher(engine, max_batch=3, window_ms=100).start()
    futures = batcher.submit_many([(prepared(str(i)), GREEDY, None) for i in range(7)])
    assert [f.result(10).text for f in futures] == [str(i) for i in range(7)]
    batcher.close()
    assert engine.batches == [["0", "1", "2"], ["3", "4", "5"], ["6"]]


def test_one_bad_request_fails_alone():
    engine = FakeEngine()
    batcher = Batcher(engine, max_batch=8, window_ms=100).start()
    futures = batcher.submit_many([(prepared(t), GREEDY, None) for t in ("a", "poison", "b")])
    assert futures[0].result(10).text == "a" and futures[2].result(10).text == "b"
    with pytest.raises(RuntimeError, match="poisoned"):
        futures[1].result(10)
    batcher.close()
    assert engine.batches[0] == ["a", "poison", "b"] and ["a"] in engine.batches and ["b"] in engine.batches


def test_stream_yields_pieces_and_returns_the_completion():
    batcher = Batcher(FakeEngine(), window_ms=0).start()
    stream = batcher.stream(prepared("hello"), GREEDY)
    pieces = []
    try:
        while True:
            pieces.append(next(stream))
    except StopIteration as stop:
        completion = stop.value
    assert pieces == ["he", "llo"] and completion.text == "hello"
    batcher.close()


def test_queue_limit_and_shutdown_finishes_accepted_requests():
    gate = threading.Event()
    batcher = Batcher(FakeEngine(gate), max_batch=1, window_ms=0, max_queue=2).start()
    first = batcher.submit(prepared("first"), GREEDY)
    while batcher.running == 0:  # the worker holds "first"; the queue is empty again
        time.sleep(0.001)
    waiting = batcher.submit_many([(prepared("w1"), GREEDY, None), (prepared("w2"), GREEDY, None)])
    with pytest.raises(QueueFullError) as info:
        batcher.submit(prepared("one too many"), GREEDY)
    assert info.value.retry_after >= 1 and "--max-queue 2" in str(info.value)
    closer = threading.Thread(target=batcher.close)
    closer.start()
    while batcher.accepting:
        time.sleep(0.001)
    with pytest.raises(ClosedError):
        batcher.submit(prepared("late"), GREEDY)
    gate.set()
    closer.join(10)
    assert [f.result(0).text for f in [first, *waiting]] == ["first", "w1", "w2"]


def test_settings_are_checked():
    for kwargs, field in (({"max_tokens": 0}, "max_tokens"), ({"temperature": 3.0}, "temperature"), ({"top_p": 0.0}, "top_p"),
                          ({"stop": ("a",) * 5}, "stop"), ({"max_tokens": 4, "min_tokens": 5}, "min_tokens")):
        with pytest.raises(ValueError) as info:
            GenerationSettings(**kwargs)
        assert info.value.field == field


def test_a_lone_request_starts_at_once_and_announced_ones_are_waited_for():
    engine = FakeEngine()
    batcher = Batcher(engine, max_batch=8, window_ms=60_000).start()
    assert batcher.submit(prepared("alone"), GREEDY).result(10).text == "alone"  # no minute-long window
    with batcher.arriving(2):
        first = batcher.submit(prepared("a"), GREEDY)
        time.sleep(0.05)  # the worker holds "a" while "b" is still being prepared
        second = batcher.submit(prepared("b"), GREEDY)
    assert (first.result(10).text, second.result(10).text) == ("a", "b")
    batcher.close()
    assert engine.batches == [["alone"], ["a", "b"]]



class SlowStreamEngine(FakeEngine):
    """Streams the first two characters of each row, then waits for the row to be cancelled."""

    cancelled: list[str]

    def generate(self, rows: list[Row]) -> list[Completion]:
        if self.gate is not None:
            self.gate.wait(10)
        self.batches.append([r.prepared.prompt for r in rows])
        out = []
        for r in rows:
            if r.sink is not None:
                r.sink(r.prepared.prompt[:2])
                if r.cancel.wait(10):
                    self.cancelled.append(r.prepared.prompt)
                out.append(Completion(r.prepared.prompt[:2], "cancelled", 1, 1))
            else:
                out.append(Completion(r.prepared.prompt, "stop", 1, 1))
        return out


def test_cancel_drops_a_queued_request_and_a_closed_stream_ends_its_row():
    gate = threading.Event()
    engine = SlowStreamEngine(gate)
    engine.cancelled = []
    batcher = Batcher(engine, max_batch=1, window_ms=0).start()
    first = batcher.submit(prepared("first"), GREEDY)
    while batcher.running == 0:
        time.sleep(0.001)
    queued = batcher.submit(prepared("queued"), GREEDY)
    assert batcher.cancel(queued) and queued.cancelled() and batcher.queue_depth == 0
    stream = batcher.stream(prepared("streamed"), GREEDY)
    gate.set()
    assert first.result(10).text == "first"
    assert next(stream) == "st"
    stream.close()  # the reader went away mid-answer: its row is told to end
    while batcher.running:
        time.sleep(0.001)
    assert not batcher.cancel(first)  # finished: nothing to cancel
    batcher.close()
    assert engine.batches == [["first"], ["streamed"]]  # "queued" was never generated
    assert engine.cancelled == ["streamed"]
