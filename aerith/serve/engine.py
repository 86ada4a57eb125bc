"""The model side of serving: requests -> prepared inputs, and one batched ``generate`` over many of them.

An :class:`Engine` wraps a loaded facade (:func:`aerith.load_vlm`). ``prepare_*`` runs in the
caller's thread (tokenising, image preprocessing, length checks), so that bad input fails
there, alone, before it reaches a batch; :meth:`Engine.generate` runs in the batcher's worker
thread and generates a whole batch at once, left-padded as ``VLM.generate`` does, so that a
greedy answer does not depend on what it was batched with.

Each row of a batch has its own ``max_tokens``, stop strings, ``min_tokens`` and text sink:
one :class:`RowTracker` (a transformers ``StoppingCriteria``) sees every new token, ends rows
independently and hands streamed text to their sinks as it is decoded.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
)

from aerith.boxes import GRID, format_box
from aerith.infer.facade import VLM

TextSink = Callable[[str], None]
MAX_STOP_STRINGS = 4


class SettingError(ValueError):
    """A generation setting out of range; ``field`` names it (OpenAI's name)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class GenerationSettings:
    """How to generate one answer (OpenAI's names).

    Args:
        max_tokens: most new tokens.
        temperature: 0 decodes greedily (the default, as evaluation does); above 0 samples.
        top_p: nucleus sampling mass (sampling only).
        seed: seeds sampling; a seeded request is generated in a batch of its own, so the
            same seed gives the same answer whatever else the server is doing.
        stop: up to four strings; the answer ends before the first one.
        min_tokens: no end-of-sequence before this many tokens (vLLM's extension).
    """

    max_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    min_tokens: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise SettingError("max_tokens", f"max_tokens must be an integer >= 1, got {self.max_tokens!r}")
        if not 0.0 <= self.temperature <= 2.0 or math.isnan(self.temperature):
            raise SettingError("temperature", f"temperature must be between 0 and 2, got {self.temperature!r}")
        if not 0.0 < self.top_p <= 1.0:
            raise SettingError("top_p", f"top_p must be in (0, 1], got {self.top_p!r}")
        if len(self.stop) > MAX_STOP_STRINGS or any(not isinstance(s, str) or not s for s in self.stop):
            raise SettingError("stop", f"stop takes up to {MAX_STOP_STRINGS} non-empty strings, got {list(self.stop)!r}")
        if not isinstance(self.min_tokens, int) or not 0 <= self.min_tokens <= self.max_tokens:
            raise SettingError("min_tokens", f"min_tokens must be an integer in [0, max_tokens={self.max_tokens}], got {self.min_tokens!r}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def batch_key(self) -> Hashable | None:
        """Requests with equal keys may share a batch; ``None``: this one runs alone (seeded sampling)."""
        if self.greedy:
            return ("greedy",)
        if self.seed is not None:
            return None
        return ("sample", self.temperature, self.top_p)


@dataclass
class PreparedInput:
    """One request, ready for a batch.

    Attributes:
        prompt: the prompt text (chat format, one ``<image>`` per image).
        input_ids: AerithVLM: the prompt's token ids with image tokens expanded; InstructBLIP: unused.
        pixels: AerithVLM: both towers' pixels ``(n_images, 3, H, W)``; ``None`` without images.
        images: InstructBLIP: the RGB image (it encodes in the batch, as its facade does).
        prompt_tokens: tokens the model reads (image tokens included).
        grounding: AerithVLM with a box head: the (last) instruction starts with ``[VG]``, so the
            head answers it, as :class:`aerith.AerithVLM` does.
    """

    prompt: str
    prompt_tokens: int
    input_ids: list[int] = field(default_factory=list)
    pixels: dict[str, torch.Tensor] | None = None
    images: list[Any] = field(default_factory=list)
    grounding: bool = False


@dataclass(frozen=True)
class Completion:
    """A generated answer: ``finish_reason`` is ``"stop"`` (end of sequence or a stop string), ``"length"``,
    or ``"cancelled"`` (its reader went away: :meth:`aerith.serve.batcher.Batcher.cancel`; no client sees it)."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Row:
    """What a batch needs of one request; setting ``cancel`` ends the row at its next token."""

    prepared: PreparedInput
    settings: GenerationSettings
    sink: TextSink | None = None
    cancel: threading.Event = field(default_factory=threading.Event)


class _RowState:
    """Tokens of one row as they come, its end, and the text streamed so far."""

    def __init__(self, row: Row, decode: Callable[[list[int]], str], eos_ids: set[int]) -> None:
        self.settings = row.settings
        self.sink = row.sink
        self.cancel = row.cancel
        self.decode = decode
        self.eos_ids = eos_ids
        self.tokens: list[int] = []
        self.text = ""
        self.emitted = ""
        self.done = False
        self.finish_reason = "length"

    def add(self, token: int) -> None:
        if self.cancel.is_set():  # nobody reads the answer any more: free the batch of this row
            self.done, self.finish_reason = True, "cancelled"
            return
        if token in self.eos_ids:
            self.done, self.finish_reason = True, "stop"
            return
        self.tokens.append(token)
        text = self.decode(self.tokens).lstrip()
        cut = min((i for i in (text.find(s) for s in self.settings.stop) if i >= 0), default=-1)
        if cut >= 0:
            text, self.done, self.finish_reason = text[:cut], True, "stop"
        elif len(self.tokens) >= self.settings.max_tokens:
            self.done = True
        self.text = text
        if self.sink is not None and not self.done:
            self._emit(self._safe_prefix(text))

    def _safe_prefix(self, text: str) -> str:
        """Text that no later token can change: no tail that may start a stop string, no half character."""
        hold = 0
        for stop in self.settings.stop:
            for n in range(min(len(stop) - 1, len(text)), hold, -1):
                if text.endswith(stop[:n]):
                    hold = n
                    break
        text = text[: len(text) - hold]
        return text.rstrip("\ufffd").rstrip()

    def _emit(self, text: str) -> None:
        if len(text) > len(self.emitted) and text.startswith(self.emitted):
            delta, self.emitted = text[len(self.emitted) :], text
            self.sink(delta)

    def finish(self, prompt_tokens: int) -> Completion:
        text = self.text.strip()
        if self.sink is not None and not self.cancel.is_set():
            self._emit(text)
        return Completion(text, self.finish_reason, prompt_tokens, len(self.tokens))


class RowTracker(StoppingCriteria):
    """Per-row ends (end of sequence, ``max_tokens``, stop strings, a cancelled row) and streaming, for one ``generate`` call.

    transformers calls a stopping criterion once per step with every sequence so far, after the
    new tokens are appended; returning a ``(batch,)`` boolean ends rows one by one (ended rows
    receive padding from then on, which is ignored here).
    """

    def __init__(self, rows: Sequence[Row], decode: Callable[[list[int]], str], eos_ids: set[int]) -> None:
        self.states = [_RowState(r, decode, eos_ids) for r in rows]

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        last = input_ids[:, -1].tolist()
        for state, token in zip(self.states, last):
            if not state.done:
                state.add(token)
        return torch.tensor([s.done for s in self.states], dtype=torch.bool, device=input_ids.device)


class _MinTokens(LogitsProcessor):
    """No end of sequence before each row's ``min_tokens``."""

    def __init__(self, tracker: RowTracker, eos_ids: set[int]) -> None:
        self.tracker = tracker
        self.eos = sorted(eos_ids)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        for i, state in enumerate(self.tracker.states):
            if len(state.tokens) < state.settings.min_tokens:
                scores[i, self.eos] = -math.inf
        return scores


class Engine(ABC):
    """A loaded model behind the server: prepares requests and generates batches of them."""

    def __init__(self, vlm: VLM) -> None:
        self.vlm = vlm
        self.tokenizer = vlm.processor.tokenizer
        # A fast tokenizer's padding and truncation settings live in its Rust object, which a call
        # with other settings changes; a concurrent call then fails ("Already borrowed"). Requests
        # are prepared in several threads, so every use of the tokenizers holds this lock.
        self.tokenizer_lock = threading.Lock()

    def decode(self, tokens: list[int]) -> str:
        with self.tokenizer_lock:
            return self.tokenizer.decode(tokens, skip_special_tokens=True)

    @property
    def context_length(self) -> int | None:
        """Most tokens (prompt + answer) the language model takes, when its config says."""
        return None

    def check_image_count(self, n: int) -> None:
        """``ValueError`` when ``n`` images can never fit one request (checked before any image is decoded)."""

    @abstractmethod
    def prepare_chat(self, messages: list[dict[str, Any]], images: Sequence[Any]) -> PreparedInput:
        """Messages in transformers' chat format (``{"type": "image"}`` parts, images given in order)."""

    @abstractmethod
    def prepare_prompt(self, prompt: str, image: Any) -> PreparedInput:
        """One instruction about one image, formatted as the facade's ``generate`` formats it."""

    @abstractmethod
    def _generate(self, rows: Sequence[Row], gen_kwargs: dict[str, Any]) -> None:
        """Run the model's ``generate`` over ``rows`` with ``gen_kwargs`` (criteria and sampling included)."""

    def eos_ids(self) -> set[int]:
        eos = self.vlm.model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) if eos is not None else set()
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids

    @torch.inference_mode()
    def generate(self, rows: Sequence[Row]) -> list[Completion]:
        """Generate every row in one batch; rows must share :meth:`GenerationSettings.batch_key`."""
        if not rows:
            return []
        settings = rows[0].settings
        eos_ids = self.eos_ids()
        tracker = RowTracker(rows, self.decode, eos_ids)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max(r.settings.max_tokens for r in rows),
            "stopping_criteria": StoppingCriteriaList([tracker]),
            "do_sample": not settings.greedy,
        }
        if any(r.settings.min_tokens for r in rows):
            gen_kwargs["logits_processor"] = LogitsProcessorList([_MinTokens(tracker, eos_ids)])
        if not settings.greedy:
            gen_kwargs.update(temperature=settings.temperature, top_p=settings.top_p, top_k=0)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
        self._generate(rows, gen_kwargs)
        return [state.finish(r.prepared.prompt_tokens) for state, r in zip(tracker.states, rows)]


class AerithEngine(Engine):
    """AerithVLM: chat text through the processor's chat template, pixels of each image preprocessed at once."""

    @property
    def context_length(self) -> int | None:
        return getattr(self.vlm.model.config.text_config, "max_position_embeddings", None)

    def check_image_count(self, n: int) -> None:
        limit, per_image = self.context_length, self.vlm.processor.num_image_tokens
        if limit is not None and n * per_image >= limit:
            raise ValueError(
                f"{n} images take {n * per_image} tokens ({per_image} each), beyond the model's context of {limit}; "
                f"send at most {(limit - 1) // per_image}"
            )

    def _prepare(self, text: str, images: Sequence[Any], instruction: str) -> PreparedInput:
        from aerith.infer.vlm import is_grounding_prompt

        processor = self.vlm.processor
        n = text.count(processor.image_token)
        if n != len(images):
            raise ValueError(f"{len(images)} image(s) for {n} image place(s) in the prompt")
        with self.tokenizer_lock:
            ids = self.tokenizer(processor.expand_image_tokens(text))["input_ids"]
        pixels = processor.process_images(list(images)) if images else None
        grounding = self.vlm.model.box_head is not None and len(images) == 1 and is_grounding_prompt(instruction)
        return PreparedInput(prompt=text, prompt_tokens=len(ids), input_ids=ids, pixels=pixels, grounding=grounding)

    def prepare_chat(self, messages: list[dict[str, Any]], images: Sequence[Any]) -> PreparedInput:
        users = [m for m in messages if m.get("role") == "user"]
        content = users[-1].get("content", "") if users else ""
        last = content if isinstance(content, str) else " ".join(c.get("text", "") for c in content if c.get("type") == "text")
        return self._prepare(self.vlm.processor.apply_chat_template(messages), images, last)

    def prepare_prompt(self, prompt: str, image: Any) -> PreparedInput:
        return self._prepare(self.vlm.processor.format_prompt(prompt), [image], prompt)

    @torch.inference_mode()
    def generate(self, rows: Sequence[Row]) -> list[Completion]:
        """As :meth:`Engine.generate`; grounding rows of a model with a box head are answered by the head,
        its box written as the model's box text and passed through the row's limits, stop strings and stream."""
        located = [i for i, r in enumerate(rows) if r.prepared.grounding]
        if not located:
            return super().generate(rows)
        out: list[Completion | None] = [None] * len(rows)
        rest = [i for i in range(len(rows)) if not rows[i].prepared.grounding]
        for i, completion in zip(rest, super().generate([rows[i] for i in rest]) if rest else []):
            out[i] = completion
        inputs = self._batch_inputs([rows[i] for i in located])
        boxes = self.vlm.model.locate(inputs["input_ids"], inputs["pixel_values"], inputs["dino_pixel_values"], inputs["attention_mask"])
        eos_ids = self.eos_ids()
        for i, box in zip(located, boxes.float().cpu()):
            text = format_box([round(float(v) * GRID) for v in box])
            with self.tokenizer_lock:
                tokens = self.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
            state = _RowState(rows[i], self.decode, eos_ids)
            for token in [*tokens, self.tokenizer.eos_token_id]:
                if state.done:
                    break
                state.add(token)
            out[i] = state.finish(rows[i].prepared.prompt_tokens)
        return [c for c in out if c is not None]

    def _batch_inputs(self, rows: Sequence[Row]) -> dict[str, torch.Tensor]:
        model = self.vlm.model
        pad = self.tokenizer.pad_token_id
        width = max(len(r.prepared.input_ids) for r in rows)
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding, as VLM.generate's processor call does
            ids = r.prepared.input_ids
            input_ids[i, width - len(ids) :] = torch.tensor(ids)
            attention[i, width - len(ids) :] = 1
        inputs: dict[str, torch.Tensor] = {"input_ids": input_ids.to(self.vlm.device), "attention_mask": attention.to(self.vlm.device)}
        with_pixels = [r.prepared.pixels for r in rows if r.prepared.pixels is not None]
        if with_pixels:
            for key in ("pixel_values", "dino_pixel_values"):
                inputs[key] = torch.cat([p[key] for p in with_pixels]).to(self.vlm.device, model.dtype)
        return inputs

    def _generate(self, rows: Sequence[Row], gen_kwargs: dict[str, Any]) -> None:
        inputs = self._batch_inputs(rows)
        pad = self.tokenizer.pad_token_id
        self.vlm.model.generate(**inputs, pad_token_id=pad, eos_token_id=self.tokenizer.eos_token_id, **gen_kwargs)


# T5's positions are relative, so its config names no limit; it is trained on 512 tokens. The bound is
# applied to prompt and answer together, as for a decoder-only model (the prompt is read by T5's encoder).
T5_CONTEXT = 512


class InstructBlipEngine(Engine):
    """InstructBLIP: one user turn with one image (how it was trained); the batch is encoded as its facade does."""

    @property
    def context_length(self) -> int | None:
        text = self.vlm.model.config.text_config
        limit = getattr(text, "max_position_embeddings", None) or getattr(text, "n_positions", None)
        return limit or (T5_CONTEXT if text.model_type == "t5" else None)

    def check_image_count(self, n: int) -> None:
        if n > 1:
            raise ValueError(f"an InstructBLIP model takes exactly one image per request, got {n}")

    def prepare_chat(self, messages: list[dict[str, Any]], images: Sequence[Any]) -> PreparedInput:
        users = [m for m in messages if m["role"] == "user"]
        if len(messages) != 1 or len(users) != 1:
            raise ValueError("an InstructBLIP model takes one user message (no history, no system message)")
        if len(images) != 1:
            raise ValueError(f"an InstructBLIP model takes exactly one image per request, got {len(images)}")
        content = users[0]["content"]
        text = content if isinstance(content, str) else "\n".join(c["text"].strip() for c in content if c["type"] == "text")
        return self.prepare_prompt(text.strip(), images[0])

    def prepare_prompt(self, prompt: str, image: Any) -> PreparedInput:
        from aerith.imageio import load_rgb

        with self.tokenizer_lock:
            n_text = len(self.tokenizer(prompt)["input_ids"])
            n_qformer = len(self.vlm.processor.qformer_tokenizer(prompt)["input_ids"])
        limit = self.vlm.model.config.qformer_config.max_position_embeddings
        if n_qformer > limit:  # the Q-Former reads the prompt too (as the facade checks)
            raise SettingError("messages", f"the prompt takes {n_qformer} tokens of the Q-Former's {limit} positions; shorten it")
        queries = self.vlm.model.config.num_query_tokens
        return PreparedInput(prompt=prompt, prompt_tokens=queries + n_text, images=[load_rgb(image)])

    def _generate(self, rows: Sequence[Row], gen_kwargs: dict[str, Any]) -> None:
        from aerith.models.instructblip import encode_inputs

        model = self.vlm.model
        # T5 reads the prompt in its encoder (right padding); a decoder-only language model (Vicuna) continues
        # each row's last token, so its pads go first. Only new tokens reach RowTracker: no prompt echo to cut.
        side = "left" if getattr(model.config, "use_decoder_only_language_model", False) else "right"
        with self.tokenizer_lock:
            inputs = encode_inputs(
                self.vlm.processor, model.config, [r.prepared.images[0] for r in rows], [r.prepared.prompt for r in rows],
                padding_side=side,
            )
        inputs = {k: v.to(self.vlm.device) for k, v in inputs.items()}
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        model.generate(**inputs, **gen_kwargs)


ENGINES: dict[str, type[Engine]] = {"aerith": AerithEngine, "instructblip": InstructBlipEngine}


def engine_for(vlm: VLM) -> Engine:
    """The engine of a loaded facade, by its ``kind``."""
    if vlm.kind not in ENGINES:
        raise ValueError(f"no serving engine for model kind {vlm.kind!r}; known: {', '.join(sorted(ENGINES))}")
    return ENGINES[vlm.kind](vlm)


__all__ = [
    "ENGINES",
    "AerithEngine",
    "Completion",
    "Engine",
    "GenerationSettings",
    "InstructBlipEngine",
    "PreparedInput",
    "Row",
    "RowTracker",
    "SettingError",
    "engine_for",
]
