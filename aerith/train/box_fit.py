"""Fit the box head on frozen features: many passes over a few thousand expressions, flipped.

Instruction tuning trains the box head beside everything else, but a run of a few thousand
steps shows it each grounding sample about once, and the head then finds the named object's
patch for fewer than one expression in six, on training images as on test ones. With the
rest of the model frozen, the head's inputs (its patch grid and the language model's
last hidden state at the end of the prompt) no longer change, so they are encoded once and
the head is trained on them for many epochs in seconds, as a detection head on a frozen
backbone. Flips multiply the data, as grounding models train with them (TransVG, ReSC:
a horizontal flip swaps "left" and "right" in the expression): each image is also seen
mirrored left-right, upside down and both, its box moved and the expression's direction
words swapped.

Run it last: the head reads the language model's states, and any later training of the
language model (SCST included) changes them. The features take
``samples x flips x patches x fusion_dim`` values in memory (about 150 MB in float32 for
the quickstart's 2,250 expressions).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from aerith.boxes import GRID, box_iou, format_box
from aerith.models.box_head import BoxHead
from aerith.train.collate import grounding_box, tokenize_aerith_sft

FLIPS = ("none", "horizontal", "vertical", "both")
# direction words a flip turns into each other (either order; matched as whole words, any case)
HORIZONTAL_SWAPS = (
    ("left", "right"), ("leftmost", "rightmost"), ("east", "west"), ("eastern", "western"),
    ("northeast", "northwest"), ("southeast", "southwest"), ("northeastern", "northwestern"), ("southeastern", "southwestern"),
)  # fmt: skip
VERTICAL_SWAPS = (
    ("top", "bottom"), ("upper", "lower"), ("above", "below"), ("topmost", "bottommost"), ("uppermost", "lowermost"),
    ("north", "south"), ("northern", "southern"), ("northeast", "southeast"), ("northwest", "southwest"),
    ("northeastern", "southeastern"), ("northwestern", "southwestern"),
)  # fmt: skip


def _swap_words(text: str, pairs: Sequence[tuple[str, str]]) -> str:
    other = {a: b for a, b in pairs} | {b: a for a, b in pairs}
    pattern = re.compile(r"\b(" + "|".join(sorted(other, key=len, reverse=True)) + r")\b", re.IGNORECASE)

    def swap(match: re.Match) -> str:
        word = match.group(0)
        new = other[word.lower()]
        if word.isupper() and len(word) > 1:
            return new.upper()
        return new.capitalize() if word[0].isupper() else new

    return pattern.sub(swap, text)


def flip_expression(text: str, flip: str) -> str:
    """The referring expression for the flipped image: ``"the ship on the left"`` -> ``"the ship on the right"``."""
    _check_flip(flip)
    if flip in ("horizontal", "both"):
        text = _swap_words(text, HORIZONTAL_SWAPS)
    if flip in ("vertical", "both"):
        text = _swap_words(text, VERTICAL_SWAPS)
    return text


def flip_box(box: Sequence[int], flip: str) -> tuple[int, int, int, int]:
    """A 0-1000 grid box ``(x1, y1, x2, y2)`` in the flipped image."""
    _check_flip(flip)
    x1, y1, x2, y2 = box
    if flip in ("horizontal", "both"):
        x1, x2 = GRID - x2, GRID - x1
    if flip in ("vertical", "both"):
        y1, y2 = GRID - y2, GRID - y1
    return x1, y1, x2, y2


def _check_flip(flip: str) -> None:
    if flip not in FLIPS:
        raise ValueError(f"flip must be one of {FLIPS}, got {flip!r}")


class BoxFitDivergedError(ValueError):
    """The fit's loss or gradient became NaN or infinite (most often: too high a learning rate)."""


@dataclass
class BoxFitConfig:
    """Settings of :func:`fit_box_head`.

    Attributes:
        steps: optimiser steps (AdamW, cosine decay to a tenth of ``lr``).
        batch_size: expressions per step, drawn at random from the encoded set.
        lr, weight_decay: AdamW's.
        flips: which flips of each training sample to encode (``"none"`` is the sample itself).
        encode_batch: samples per forward pass of the frozen model while encoding.
        seed: seeds the order of the minibatches.
        max_seconds: a wall-clock limit on the fitting (not the encoding): after 20 steps, and
            every 50 steps after, the step count is set to what fits at the pace so far (never above
            ``steps``), and the learning-rate schedule follows it.
    """

    steps: int = 1500
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.01
    flips: tuple[str, ...] = FLIPS
    encode_batch: int = 32
    seed: int = 0
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        self.flips = tuple(self.flips)
        for flip in self.flips:
            _check_flip(flip)
        if not self.flips:
            raise ValueError("flips is empty: give at least 'none'")
        if self.steps < 1 or self.batch_size < 1 or self.encode_batch < 1:
            raise ValueError(f"steps, batch_size and encode_batch must be >= 1, got {self.steps}, {self.batch_size}, {self.encode_batch}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError(f"need lr > 0 and weight_decay >= 0, got {self.lr} and {self.weight_decay}")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"max_seconds must be > 0, got {self.max_seconds}")


@dataclass
class EncodedSet:
    """The box head's inputs and targets: ``grids (N, P, dim)``, ``queries (N, width)``, ``targets (N, 4)`` in [0, 1]."""

    grids: torch.Tensor
    queries: torch.Tensor
    targets: torch.Tensor

    def __len__(self) -> int:
        return len(self.targets)


def _flipped(instruction: Any, flip: str) -> SimpleNamespace:
    box = [round(float(v) * GRID) for v in grounding_box(instruction)]
    return SimpleNamespace(
        task="vg",
        prompt=flip_expression(instruction.prompt, flip),
        target=format_box(flip_box(box, flip)),
        sample=instruction.sample,
    )


def flip_pixels(pixels: torch.Tensor, flip: str) -> torch.Tensor:
    """``(B, 3, H, W)`` processed pixels of the flipped images (the processors resize the whole image,
    never crop, so flipping after them is flipping before)."""
    _check_flip(flip)
    dims = {"none": [], "horizontal": [-1], "vertical": [-2], "both": [-2, -1]}[flip]
    return torch.flip(pixels, dims=dims) if dims else pixels


@torch.no_grad()
def encode(model: Any, processor: Any, instructions: Sequence[Any], flips: Sequence[str] = ("none",), batch_size: int = 32) -> EncodedSet:
    """Run the frozen model over grounding instructions (and their flips); keep what the box head reads.

    Images are read ``batch_size`` at a time, each once; its flips are made from its processed
    pixels, and each flip of the chunk runs as one batch.

    Raises:
        ValueError: no instructions, an instruction that is not grounding, or a target that is not one box (naming the image).
    """
    if model.box_head is None:
        raise ValueError("this model has no box head (config.box_head is false)")
    if not instructions:
        raise ValueError("no grounding instructions to encode")
    for ins in instructions:
        if ins.task != "vg":
            raise ValueError(f"{ins.sample.image}: the box head is fitted on grounding instructions, got a {ins.task!r} one")
    grids, queries, targets = [], [], []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(instructions), batch_size):
            chunk = instructions[start : start + batch_size]
            pixels = processor.process_images([ins.sample.image for ins in chunk])
            for flip in flips:
                batch = tokenize_aerith_sft(processor, [_flipped(ins, flip) for ins in chunk], max_length=10**6, with_boxes=True)
                dtype, device = model.dtype, model.device
                fused, grid = model.grids_and_box_input(
                    flip_pixels(pixels["pixel_values"], flip).to(device, dtype),
                    flip_pixels(pixels["dino_pixel_values"], flip).to(device, dtype),
                )
                out = model(
                    input_ids=batch["input_ids"].to(device),
                    attention_mask=batch["attention_mask"].to(device),
                    image_features=model.connect(fused),
                    output_hidden_states=True,
                    logits_to_keep=1,
                    use_cache=False,
                )
                index = batch["box_query_index"].to(device)
                grids.append(grid.cpu())
                queries.append(out.hidden_states[-1][torch.arange(len(index), device=device), index].cpu())
                targets.append(batch["box_targets"])
    finally:
        model.train(was_training)
    return EncodedSet(torch.cat(grids), torch.cat(queries), torch.cat(targets))


def box_accuracy(head: BoxHead, data: EncodedSet, threshold: float = 0.5, batch_size: int = 256) -> float:
    """Share of ``data`` whose best box overlaps the target by IoU >= ``threshold`` (Acc@0.5)."""
    device = next(head.parameters()).device
    hits = 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            part = slice(start, start + batch_size)
            scores, boxes = head(data.grids[part].to(device), data.queries[part].to(device))
            best = BoxHead.best(scores, boxes).float().cpu()
            hits += sum(box_iou(a.tolist(), b.tolist()) >= threshold for a, b in zip(best, data.targets[part]))
    return hits / len(data) if len(data) else float("nan")


def fit_box_head(
    model: Any,
    train: EncodedSet,
    config: BoxFitConfig,
    val: EncodedSet | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
    log_every: int = 100,
) -> list[dict[str, Any]]:
    """Train ``model.box_head`` alone on encoded features; returns the log (loss, and val Acc@0.5 if ``val``).

    Raises:
        BoxFitDivergedError: a step's loss or gradient is NaN or infinite (that step is not applied).
    """
    head: BoxHead = model.box_head
    if head is None:
        raise ValueError("this model has no box head (config.box_head is false)")
    if len(train) == 0:
        raise ValueError("no grounding samples to fit the box head on")
    device = next(head.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    params = list(head.parameters())
    for p in params:
        p.requires_grad_(True)
    optimiser = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    total = config.steps
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda step: 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
    )
    history: list[dict[str, Any]] = []
    head.train()
    tic, running, step = time.monotonic(), 0.0, 0
    while step < total:
        step += 1
        pick = torch.randint(0, len(train), (min(config.batch_size, len(train)),), generator=generator)
        scores, boxes = head(train.grids[pick].to(device), train.queries[pick].to(device))
        loss = head.loss(scores, boxes, train.targets[pick].to(device)) / len(pick)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        value = loss.item()
        grad_norm = float(torch.stack([p.grad.norm() for p in params if p.grad is not None]).norm())
        if not (math.isfinite(value) and math.isfinite(grad_norm)):
            raise BoxFitDivergedError(
                f"the box head's fit diverged at step {step} of {total}: loss {value}, gradient norm {grad_norm}; "
                f"stopped before applying it. Try a lower learning rate than {config.lr}"
            )
        optimiser.step()
        schedule.step()
        running += value
        if config.max_seconds is not None and (step == 20 or (step > 20 and step % 50 == 0)):
            # re-estimated from the pace so far, not once: a machine that slows after the first steps
            # (a shared host) overran the limit by a third
            pace = (time.monotonic() - tic) / step
            total = max(step, min(config.steps, int(config.max_seconds / pace)))
        if step % log_every == 0 or step == total:
            record: dict[str, Any] = {"step": step, "loss": running / (log_every if step % log_every == 0 else step % log_every)}
            running = 0.0
            if val is not None and step == total:
                head.eval()
                record["val_acc@0.5"] = box_accuracy(head, val)
                head.train()
            record["seconds"] = round(time.monotonic() - tic, 1)
            history.append(record)
            if log is not None:
                log(record)
    head.eval()
    return history


def grounding_instructions(dataset: Any, seed: int = 0, phrasing: int | None = None) -> list[Any]:
    """The grounding instructions of an opened dataset: phrasings drawn as in training (``phrasing=None``),
    or one phrasing for all (``0``: the canonical prompt that evaluation and ``ground`` use)."""
    from aerith.data.instructions import to_instruction

    out = []
    for index in range(len(dataset)):
        sample = dataset[index]
        if sample.task != "vg":
            raise ValueError(f"{sample.image}: the box head is fitted on grounding samples, this dataset gives {sample.task!r} ones")
        out.append(to_instruction(sample, seed=seed, index=index, phrasing=phrasing))
    return out


def _open_split(load_dataset: Callable[..., Any], dataset: str, root: str | Path, split: str, options: dict[str, Any], what: str) -> Any:
    """The opened split, or a ValueError naming the option, dataset, folder and split when it holds no sample."""
    opened = load_dataset(dataset, root, split=split, **options)
    if len(opened) == 0:
        purpose = "to score the fitted head on" if what == "val_split" else "to fit the box head on"
        raise ValueError(f"{what}: the {split!r} split of {dataset} in {root} has no samples {purpose}")
    return opened


FIT_FILES = frozenset({"checkpoint-final", "box_fit.json", "metrics.jsonl"})


def _listing(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) if out.is_dir() else []


def check_out(out: Path, overwrite: bool) -> None:
    """A fit's folder must be new, empty (hidden files aside) or an earlier fit's (``box_fit.json`` and
    nothing but a fit's files), which only ``overwrite`` replaces: the fit writes the folder whole."""
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder for the box fit")
    entries = _listing(out)
    if not entries:
        return
    if "box_fit.json" in entries and set(entries) <= FIT_FILES:
        if not overwrite:
            raise FileExistsError(f"{out} already holds a box fit (box_fit.json); pass --overwrite (overwrite=True) to replace it, or choose another --out")
        return
    run = "another run" if {"checkpoint-final", "metrics.jsonl", "config.yaml"} & set(entries) else "other files"
    shown = ", ".join(entries[:5]) + (f" and {len(entries) - 5} more" if len(entries) > 5 else "")
    raise FileExistsError(
        f"{out} holds {run} ({shown}) and is not an earlier box fit (box_fit.json, checkpoint-final, metrics.jsonl "
        "and nothing else), so it is never replaced; give a new or empty folder"
    )


def run_box_fit(
    model: str | Path,
    dataset: str,
    root: str | Path,
    out: str | Path,
    config: BoxFitConfig | None = None,
    *,
    split: str = "train",
    val_split: str | None = None,
    options: dict[str, Any] | None = None,
    overwrite: bool = False,
    max_seconds: float | None = None,
    log: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Fit the box head of ``model`` on a grounding dataset and save the model to ``out/checkpoint-final``.

    Args:
        model: a saved model or run folder (:func:`aerith.load_vlm`) whose config has ``box_head: true``.
        dataset, root, split, options: the grounding data (``aerith.data.load_dataset``), e.g.
            ``"synthrs", DIR, options={"task": "vg"}`` or ``"dior-rsvg", DIR``.
        out: the run folder, written as a whole in one step: ``checkpoint-final/`` (the whole model),
            ``box_fit.json`` (settings and log), ``metrics.jsonl`` (the log, as the training stages write it).
        val_split: report Acc@0.5 of the fitted head on this split's expressions.
        max_seconds: a wall-clock limit on encoding and fitting together: the fitting gets what
            the encoding left (at least 20 steps), as ``config.max_seconds``.
        overwrite: replace an earlier fit in ``out``.
    Returns:
        what ``box_fit.json`` holds.
    Raises:
        FileExistsError: ``out`` is not new, empty or an earlier fit, or is one and ``overwrite`` is false
            (checked before the model loads).
        BoxFitDivergedError: the loss or the gradient became non-finite; nothing is written.
    """
    from aerith.atomic import atomic_dir, atomic_write_text
    from aerith.data.registry import load_dataset
    from aerith.infer.load import load_vlm
    from aerith.runs import saved_dtype

    from aerith.data.commands import check_options
    from aerith.data.registry import get_dataset_class

    config = config or BoxFitConfig()
    out = Path(out)
    check_out(out, overwrite)
    get_dataset_class(dataset)  # an unknown dataset or loader option fails here, before the model loads
    check_options(dataset, options or {})
    options = dict(options or {})
    # both splits open (and are checked non-empty) before the model loads and the long encoding
    train_set = _open_split(load_dataset, dataset, root, split, options, "split")
    val_set = _open_split(load_dataset, dataset, root, val_split, options, "val_split") if val_split is not None else None
    vlm = load_vlm(model)  # float32: the head is fitted in full precision and saved in the source's dtype
    dtype = saved_dtype(model)
    if vlm.kind != "aerith" or vlm.model.box_head is None:
        raise ValueError(f"{model}: the model has no box head; build it with box_head: true in its config")
    tic = time.monotonic()
    train = encode(vlm.model, vlm.processor, grounding_instructions(train_set, config.seed), config.flips, config.encode_batch)
    val = None
    if val_set is not None:
        val = encode(vlm.model, vlm.processor, grounding_instructions(val_set, config.seed, phrasing=0), ("none",), config.encode_batch)
    encode_seconds = time.monotonic() - tic
    if max_seconds is not None:
        config = replace(config, max_seconds=max(1.0, max_seconds - encode_seconds))
    history = fit_box_head(vlm.model, train, config, val=val, log=log)
    steps = history[-1]["step"]
    previous = vlm.model.config.training_state
    vlm.model.config.training_state = f"{previous}; box head fitted: {steps} steps on {dataset} {split} ({len(train)} samples with flips)"
    if dtype is not None:
        vlm.model.to(dtype)
    info = {
        "model": str(model), "dataset": dataset, "root": str(root), "split": split, "val_split": val_split,
        "options": options, "config": {**asdict(config), "flips": list(config.flips)}, "samples": len(train),
        "steps": steps, "encode_seconds": round(encode_seconds, 1), "log": history,
    }
    # the model, its log and box_fit.json appear together or not at all (a crash leaves the folder as it was)
    check_out(out, overwrite)  # again: the folder may have changed while the head was fitted
    with atomic_dir(out, overwrite=True, what="a box fit") as tmp:
        vlm.save_pretrained(tmp / "checkpoint-final")
        atomic_write_text(tmp / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))
        atomic_write_text(tmp / "box_fit.json", json.dumps(info, indent=2) + "\n")
        for hidden in (p for p in out.iterdir() if p.name.startswith(".")) if out.is_dir() else ():
            copy = shutil.copytree if hidden.is_dir() else shutil.copy2  # kept, as in a folder written in place
            copy(hidden, tmp / hidden.name)
    return info


__all__ = [
    "FLIPS",
    "BoxFitConfig",
    "BoxFitDivergedError",
    "EncodedSet",
    "box_accuracy",
    "encode",
    "fit_box_head",
    "flip_box",
    "flip_expression",
    "grounding_instructions",
    "run_box_fit",
]
