"""Instructions -> training batches, with the loss on answer tokens only.

AerithVLM (causal LM): the chat prompt ``[INST] <image>\\n{prompt} [/INST]`` is
tokenised with its image tokens expanded, the answer separately (``" " + target``
and the end-of-sequence token), and the two are concatenated. Labels are -100 on
the prompt, the image tokens and the padding; padding is on the right.

InstructBLIP with a T5 language model (encoder-decoder): the prompt goes to the
encoder after the query tokens, the answer + end-of-sequence is the decoder's labels
(-100 on padding). With a decoder-only language model (Vicuna) the sequence is the
query tokens, the prompt, the answer and the end-of-sequence token, right-padded, and
the labels are aligned with it: -100 on the query tokens, the prompt and the padding.
"""

from __future__ import annotations

from collections.abc import Sequence
import re
from typing import Any, Protocol

import torch

from aerith.boxes import GRID

IGNORE = -100


class InstructionLike(Protocol):
    """What ``aerith.data.instructions.to_instruction`` returns."""

    task: str
    prompt: str
    target: str
    sample: Any


def _answer_ids(tokenizer, target: str) -> list[int]:
    return tokenizer(" " + target.strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


def collate_aerith_sft(
    processor, instructions: Sequence[InstructionLike], max_length: int, with_boxes: bool = False
) -> dict[str, torch.Tensor]:
    """Batch for :class:`AerithForConditionalGeneration`.

    Returns:
        ``input_ids``, ``attention_mask``, ``labels`` ``(B, T)``; ``pixel_values`` and
        ``dino_pixel_values`` ``(B, 3, H, W)``; for a model with a box head, ``box_query_index``
        ``(B,)`` (the prompt's last token on grounding rows, -1 elsewhere) and ``box_targets``
        ``(B, 4)`` (the target box in [0, 1], read from the target text).
    Raises:
        ValueError: a prompt alone is longer than ``max_length`` (names the image).
    """
    batch = tokenize_aerith_sft(processor, instructions, max_length, with_boxes)
    return {**batch, **processor.process_images([ins.sample.image for ins in instructions])}


def tokenize_aerith_sft(
    processor, instructions: Sequence[InstructionLike], max_length: int, with_boxes: bool = False
) -> dict[str, torch.Tensor]:
    """The text half of :func:`collate_aerith_sft` (no pixels)."""
    tokenizer = processor.tokenizer
    rows: list[tuple[list[int], list[int]]] = []
    query_index = torch.full((len(instructions),), -1, dtype=torch.long)
    targets = torch.zeros((len(instructions), 4))
    for row, ins in enumerate(instructions):
        prompt_text = processor.expand_image_tokens(processor.format_prompt(ins.prompt))
        prompt_ids = tokenizer(prompt_text)["input_ids"]
        if len(prompt_ids) >= max_length:
            raise ValueError(
                f"{ins.sample.image}: the prompt takes {len(prompt_ids)} tokens, data.max_length is {max_length}"
            )
        answer = _answer_ids(tokenizer, ins.target)[: max_length - len(prompt_ids)]
        if with_boxes and ins.task == "vg":
            query_index[row] = len(prompt_ids) - 1
            targets[row] = grounding_box(ins)
        rows.append((prompt_ids + answer, [IGNORE] * len(prompt_ids) + answer))
    batch = _right_padded(rows, tokenizer.pad_token_id)
    if with_boxes:
        batch.update(box_query_index=query_index, box_targets=targets)
    return batch


_GRID_BOX = re.compile(r"^\[\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\s*\]$")


def grounding_box(ins: InstructionLike) -> torch.Tensor:
    """The grounding target box in [0, 1], read from the target text (``format_box``'s ``[x1, y1, x2, y2]``)."""
    match = _GRID_BOX.match(ins.target.strip())
    if match is None:
        raise ValueError(f"{ins.sample.image}: grounding target {ins.target!r} is not one box [x1, y1, x2, y2] on the 0-{GRID} grid")
    box = torch.tensor([float(v) for v in match.groups()]) / GRID
    if (box > 1).any() or box[2] < box[0] or box[3] < box[1]:
        raise ValueError(f"{ins.sample.image}: grounding target {ins.target!r} is not a box inside the 0-{GRID} grid")
    return box


def collate_instructblip_sft(processor, config, instructions: Sequence[InstructionLike], max_length: int) -> dict[str, torch.Tensor]:
    """Batch for ``InstructBlipForConditionalGeneration``, with a T5 or a decoder-only language model.

    Returns:
        the model inputs of :func:`aerith.models.instructblip.encode_inputs` plus ``labels``: T5, ``(B, L)``
        the decoder's targets; decoder-only, ``(B, T)`` aligned with ``input_ids`` (which then end with the
        answer), to be shifted by one for next-token prediction.
    Raises:
        ValueError: a prompt (with its image tokens) is longer than ``max_length``.
    """
    from aerith.models.instructblip import encode_inputs, is_decoder_only

    batch = encode_inputs(processor, config, [i.sample.image for i in instructions], [i.prompt for i in instructions])
    if batch["input_ids"].shape[1] > max_length:
        raise ValueError(f"a prompt takes {batch['input_ids'].shape[1]} tokens, data.max_length is {max_length}")
    tokenizer = processor.tokenizer
    if is_decoder_only(config):
        return _decoder_only_sft(tokenizer, batch, instructions, max_length)
    answers = [tokenizer(i.target.strip(), add_special_tokens=False)["input_ids"][: max_length - 1] for i in instructions]
    answers = [a + [tokenizer.eos_token_id] for a in answers]
    labels = torch.full((len(answers), max(len(a) for a in answers)), IGNORE, dtype=torch.long)
    for i, a in enumerate(answers):
        labels[i, : len(a)] = torch.tensor(a)
    batch["labels"] = labels
    return batch


def _decoder_only_sft(tokenizer, batch: dict[str, torch.Tensor], instructions: Sequence[InstructionLike], max_length: int) -> dict[str, torch.Tensor]:
    """``[query tokens, prompt, answer, eos]`` right-padded, labels on the answer and eos only."""
    lengths = batch["attention_mask"].sum(dim=1).tolist()  # query tokens + prompt (encode_inputs pads on the right)
    rows = []
    for row, (ins, n) in enumerate(zip(instructions, lengths, strict=True)):
        if n >= max_length:
            raise ValueError(f"{ins.sample.image}: the prompt takes {n} tokens with its image tokens, data.max_length is {max_length}")
        answer = _answer_ids(tokenizer, ins.target)[: max_length - n]
        prompt = batch["input_ids"][row, :n].tolist()
        rows.append((prompt + answer, [IGNORE] * n + answer))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return {**batch, **_right_padded(rows, pad)}


def _right_padded(rows: Sequence[tuple[list[int], list[int]]], pad: int) -> dict[str, torch.Tensor]:
    """``(ids, labels)`` rows -> ``input_ids``, ``attention_mask`` and ``labels (B, L)``, right-padded."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (ids, lab) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        labels[i, : len(lab)] = torch.tensor(lab)
        attention[i, : len(ids)] = 1
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


def collate_images(processor, images: Sequence[Any]) -> dict[str, torch.Tensor]:
    """Both towers' pixels for the align stage: ``pixel_values``, ``dino_pixel_values`` ``(B, 3, H, W)``."""
    return processor.process_images(list(images))
