"""LoRA on the language model through peft, described by the config so checkpoints rebuild it.

``AerithConfig.lora`` (a dict of ``r``, ``alpha``, ``dropout``, ``target_modules``) makes the
model inject LoRA layers into its language model at construction, so
``from_pretrained`` finds the same parameter names it saved. :func:`merge_lora`
folds the adapters into the base weights and clears the field.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] = field(default_factory=lambda: list(DEFAULT_TARGETS))

    def __post_init__(self) -> None:
        if self.r < 1 or self.alpha <= 0:
            raise ValueError(f"LoRA needs r >= 1 and alpha > 0, got r={self.r}, alpha={self.alpha}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("LoRA target_modules is empty")

    def to_dict(self) -> dict:
        return asdict(self)


def inject_lora(language_model: nn.Module, settings: LoraSettings) -> None:
    """Add LoRA layers to ``language_model`` in place; only they train in it afterwards."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=list(settings.target_modules),
        bias="none",
    )
    inject_adapter_in_model(config, language_model)
    for name, param in language_model.named_parameters():
        param.requires_grad_("lora_" in name)


def merge_lora(language_model: nn.Module) -> int:
    """Fold every LoRA layer into its base layer and put the base layer back; returns how many."""
    from peft.tuners.lora import LoraLayer

    replaced = 0
    for name, module in list(language_model.named_modules()):
        if isinstance(module, LoraLayer):
            module.merge()
            parent_name, _, child = name.rpartition(".")
            parent = language_model.get_submodule(parent_name) if parent_name else language_model
            setattr(parent, child, module.get_base_layer())
            replaced += 1
    return replaced
