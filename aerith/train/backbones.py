"""One small adapter per model family, so the training loop never asks which model it trains.

A :class:`Backbone` holds a model, its processor and its family (``aerith`` or
``instructblip``), and knows what is particular to the family: its named parameter
groups, which parts stay in eval mode, LoRA, gradient checkpointing and saving in
the ``save_pretrained`` format. What a stage does with it (collation, objective)
lives with the stage (:mod:`aerith.train.align`, :mod:`aerith.train.sft`,
:mod:`aerith.train.scst`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

AERITH_GROUPS = (
    "towers", "clip_tower", "dino_tower", "clip_proj", "dino_head", "fuse", "pooler", "mlp", "connector", "projector", "lora",
    "language_model", "box_head",
)
INSTRUCTBLIP_GROUPS = ("vision_model", "qformer", "query_tokens", "language_projection", "language_model", "lora")


@dataclass
class Backbone:
    """A model, its processor and the family they belong to (``aerith`` or ``instructblip``)."""

    kind: str
    model: nn.Module
    processor: Any

    # -- parameters -------------------------------------------------------------------------------
    def groups(self) -> dict[str, list[nn.Parameter]]:
        """Named parameter groups a recipe can train (a parameter may sit in several)."""
        m = self.model
        lm_named = list(m.language_model.named_parameters())
        lora = [p for n, p in lm_named if "lora_" in n]
        if self.kind == "aerith":
            groups = {
                "clip_tower": list(m.clip_tower.parameters()),
                "dino_tower": list(m.dino_tower.parameters()),
                "clip_proj": list(m.clip_proj.parameters()),
                "dino_head": list(m.dino_head.parameters()),
                "fuse": list(m.fuse.parameters()) if m.fuse is not None else [],
                "projector": list(m.projector.parameters()),
                "connector": m.connector_parameters(),
                "lora": lora,
                "language_model": [p for n, p in lm_named if "lora_" not in n],
                "box_head": list(m.box_head.parameters()) if m.box_head is not None else [],
            }
            # the connector's own name: "pooler" (its attention pooler) or "mlp" (the whole LLaVA-style MLP)
            if m.config.connector == "pooler":
                groups["pooler"] = list(m.pooler.parameters())
            else:
                groups["mlp"] = groups["connector"]
            groups["towers"] = groups["clip_tower"] + groups["dino_tower"]
            return groups
        return {
            "vision_model": list(m.vision_model.parameters()),
            "qformer": list(m.qformer.parameters()),
            "query_tokens": [m.query_tokens],
            "language_projection": list(m.language_projection.parameters()),
            "language_model": [p for n, p in lm_named if "lora_" not in n],
            "lora": lora,
        }

    def set_trainable(self, names: Sequence[str]) -> int:
        """Freeze everything, then unfreeze the named groups; returns the trainable parameter count."""
        groups = self.groups()
        unknown = [n for n in names if n not in groups]
        if unknown:
            hint = ""
            if self.kind == "aerith" and {"pooler", "mlp"} & set(unknown):
                hint = f" (this model's connector is {self.model.config.connector!r}: 'connector' names it either way)"
            raise ValueError(f"unknown trainable group(s) {unknown} for {self.kind}; valid groups: {sorted(groups)}{hint}")
        if "lora" in names and not groups["lora"]:
            raise ValueError("trainable names 'lora' but the model has no LoRA adapters: set model.lora in the recipe")
        if "box_head" in names and not groups["box_head"]:
            raise ValueError(
                "trainable names 'box_head' but the model has none: build the model with one (box_head: true in the "
                "preset's overrides, e.g. model.yaml of the quickstart recipes); a saved model without one cannot grow one"
            )
        self.model.requires_grad_(False)
        for name in names:
            for p in groups[name]:
                p.requires_grad_(True)
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def train_mode(self) -> None:
        """Training mode, except fully frozen vision towers stay in eval mode (DINOv3 jitters RoPE in training)."""
        self.model.train()
        towers = ("clip_tower", "dino_tower") if self.kind == "aerith" else ("vision_model",)
        for name in towers:
            tower = getattr(self.model, name)
            if not any(p.requires_grad for p in tower.parameters()):
                tower.eval()

    def add_lora(self, settings: dict[str, Any]) -> None:
        """Add LoRA to the language model (AerithVLM only: its config rebuilds the adapters on load)."""
        if self.kind != "aerith":
            raise ValueError(
                "LoRA is supported on AerithVLM; for InstructBLIP the recipe trains the Q-Former, query tokens and "
                "projection (set model.lora: null)"
            )
        from aerith.models.lora import LoraSettings

        if self.model.config.lora is None:
            self.model.add_lora(LoraSettings(**settings))
        elif self.model.config.lora != LoraSettings(**settings).to_dict():
            raise ValueError(f"the model already has LoRA {self.model.config.lora}, the recipe asks for {settings}")

    def enable_gradient_checkpointing(self) -> None:
        self.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        self.model.config.use_cache = False

    # -- saving -----------------------------------------------------------------------------------
    def save(self, folder: Path, model: nn.Module | None = None, state_dict: dict | None = None) -> None:
        """Write ``model`` (default: ours) and the processor into ``folder`` (a temp folder the caller renames)."""
        (model or self.model).save_pretrained(folder, state_dict=state_dict)
        self.processor.save_pretrained(folder)


def resolve_dtype(name: str) -> torch.dtype:
    """A recipe's ``model.dtype``; ``auto``: bf16 on a CUDA GPU that has it, else float32."""
    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    return getattr(torch, name)


def load_backbone(
    init: str, *, seed: int = 0, dtype: torch.dtype | None = None, load_in_4bit: bool = False, device: str = "cpu"
) -> Backbone:
    """A preset name (AerithVLM or InstructBLIP), a saved folder or a run folder -> :class:`Backbone`.

    Loads through :func:`aerith.load_vlm`, the one loader every command uses.
    """
    from aerith.infer.load import load_vlm

    vlm = load_vlm(init, seed=seed, device=device, dtype=dtype, load_in_4bit=load_in_4bit)
    return Backbone(vlm.kind, vlm.model, vlm.processor)
