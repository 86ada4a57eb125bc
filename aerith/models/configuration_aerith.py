"""Configuration of AerithVLM: two vision towers, an attention pooler, a causal LM."""

from __future__ import annotations

from dataclasses import field

from transformers import AutoConfig, CLIPVisionConfig, DINOv3ViTConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

# CLIP ViT-L/14 at 224 px (openai/clip-vit-large-patch14).
CLIP_VIT_L14 = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    patch_size=14,
    image_size=224,
    projection_dim=768,
    hidden_act="quick_gelu",
)
# DINOv3 ViT-B/16 (facebook/dinov3-vitb16-pretrain-lvd1689m): a CLS token and 4 registers before the patches.
DINOV3_VIT_B16 = dict(
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    patch_size=16,
    image_size=224,
    num_register_tokens=4,
    key_bias=False,
)

FUSIONS = ("sum", "concat")


class AerithConfig(PreTrainedConfig):
    r"""Composite configuration of :class:`AerithForConditionalGeneration`.

    Args:
        clip_config: tower A (``CLIPVisionConfig``), frozen; its patch grid sets the fused grid.
        dino_config: tower B (``DINOv3ViTConfig``), frozen; CLS and register tokens are dropped
            (counts read from this config) and its patch grid is resampled bilinearly to CLIP's.
        text_config: any causal LM config (``LlamaConfig`` by default).
        fusion_dim: width of the fused patch features (768 in the seed).
        fusion: ``"sum"`` of the two projected grids, or ``"concat"`` followed by a linear layer.
        clip_feature_layers / dino_feature_layers: hidden-state index per feature level
            (``-2`` = penultimate layer). Both lists have one entry per level.
        queries_per_level: how the learned queries split over the levels (LHRS-Bot: 64/48/32);
            ``None`` lets every query attend to every level.
        num_queries, pooler_layers, pooler_heads, pooler_mlp_ratio: the attention pooler.
        pooler_pos_embed: add a learned 2-D position embedding to the fused grid before pooling.
        pooler_locality_prior: start each query attending around its own point of the grid
            (see :class:`aerith.models.pooler.AttentionPooler`); without it a fresh pooler
            averages position away and grounding is slow to learn from scratch.
        image_token_id: id of the ``<image>`` placeholder in the tokenizer.
        lora: LoRA on the language model (``r``, ``alpha``, ``dropout``, ``target_modules``) or ``None``.
        training_state: provenance of the weights, shown to users. ``"random-init"`` means
            untrained; training stages record what they did (e.g. ``"sft"``).
    """

    model_type = "aerith"
    sub_configs_defaults = {
        "clip_config": SubConfigSpec(config_class=CLIPVisionConfig, init_kwargs=CLIP_VIT_L14),
        "dino_config": SubConfigSpec(config_class=DINOv3ViTConfig, init_kwargs=DINOV3_VIT_B16),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    clip_config: dict | PreTrainedConfig | None = None
    dino_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    fusion_dim: int = 768
    fusion: str = "sum"
    clip_feature_layers: list[int] = field(default_factory=lambda: [-2])
    dino_feature_layers: list[int] = field(default_factory=lambda: [-1])
    queries_per_level: list[int] | None = None
    num_queries: int = 144
    pooler_layers: int = 6
    pooler_heads: int = 16
    pooler_mlp_ratio: float = 4.0
    pooler_pos_embed: bool = True
    pooler_locality_prior: bool = True
    image_token_id: int = 32000
    training_state: str = "random-init"
    lora: dict | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.clip_feature_layers = [int(i) for i in self.clip_feature_layers]
        self.dino_feature_layers = [int(i) for i in self.dino_feature_layers]
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if len(self.clip_feature_layers) != len(self.dino_feature_layers) or not self.clip_feature_layers:
            raise ValueError(
                "clip_feature_layers and dino_feature_layers need one entry per feature level, got "
                f"{self.clip_feature_layers} and {self.dino_feature_layers}"
            )
        if self.queries_per_level is not None:
            self.queries_per_level = [int(q) for q in self.queries_per_level]
            if len(self.queries_per_level) != self.num_levels or sum(self.queries_per_level) != self.num_queries:
                raise ValueError(
                    f"queries_per_level {self.queries_per_level} must have {self.num_levels} entries "
                    f"summing to num_queries={self.num_queries}"
                )
        if self.fusion_dim % self.pooler_heads:
            raise ValueError(f"fusion_dim={self.fusion_dim} is not divisible by pooler_heads={self.pooler_heads}")
        if self.lora is not None:
            from aerith.models.lora import LoraSettings

            self.lora = LoraSettings(**self.lora).to_dict()  # validates
        for name in ("num_queries", "pooler_layers", "fusion_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def num_levels(self) -> int:
        return len(self.clip_feature_layers)

    @property
    def clip_grid(self) -> int:
        """Side of CLIP's patch grid (16 for ViT-L/14 at 224 px), the grid the towers are fused on."""
        return self.clip_config.image_size // self.clip_config.patch_size

    @property
    def dino_grid(self) -> int:
        return self.dino_config.image_size // self.dino_config.patch_size

    @property
    def dino_prefix_tokens(self) -> int:
        """CLS plus register tokens that precede DINOv3's patch tokens."""
        return 1 + int(getattr(self.dino_config, "num_register_tokens", 0) or 0)


__all__ = ["AerithConfig"]
