"""Configuration of AerithVLM: two vision towers, an attention pooler, a causal LM."""

from __future__ import annotations

import math
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

FUSIONS = ("sum", "concat", "clip", "dino")
CONNECTORS = ("pooler", "mlp")
BOX_HEAD_INPUTS = ("clip", "fused")

# Scalar fields and the JSON types they accept: a config.json edited by hand with "false" (a string) or
# "144" must fail here, naming the field, not change the architecture or fail later with a raw TypeError.
_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "fusion_dim": (int,),
    "fusion": (str,),
    "connector": (str,),
    "num_queries": (int,),
    "pooler_layers": (int,),
    "pooler_heads": (int,),
    "pooler_mlp_ratio": (int, float),
    "pooler_pos_embed": (bool,),
    "pooler_locality_prior": (bool,),
    "position_code": (bool,),
    "box_head": (bool,),
    "box_head_input": (str,),
    "box_loss_weight": (int, float),
    "image_token_id": (int,),
    "training_state": (str,),
}
_INT_LISTS = ("clip_feature_layers", "dino_feature_layers", "queries_per_level")


def _check_types(config: PreTrainedConfig) -> None:
    """Raise ``TypeError`` naming the first field whose JSON type is wrong (``true`` is no integer)."""
    for name, types in _SCALAR_TYPES.items():
        value = getattr(config, name)
        if isinstance(value, bool) and bool not in types or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise TypeError(f"AerithConfig.{name} must be {wanted}, got {type(value).__name__} {value!r}")
    for name in _INT_LISTS:
        value = getattr(config, name)
        if value is None and name == "queries_per_level":
            continue
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            raise TypeError(f"AerithConfig.{name} must be a list of integers, got {value!r}")


class AerithConfig(PreTrainedConfig):
    r"""Composite configuration of :class:`AerithForConditionalGeneration`.

    Args:
        clip_config: tower A (``CLIPVisionConfig``), frozen; its patch grid sets the fused grid.
        dino_config: tower B (``DINOv3ViTConfig``), frozen; CLS and register tokens are dropped
            (counts read from this config) and its patch grid is resampled bilinearly to CLIP's.
        text_config: any causal LM config (``LlamaConfig`` by default).
        fusion_dim: width of the fused patch features (768 in the seed).
        fusion: ``"sum"`` of the two projected grids, ``"concat"`` followed by a linear layer, or one
            tower alone: ``"clip"`` (CLIP's projected grid) or ``"dino"`` (the DINOv3 head's grid); the
            unused tower is kept in the model (same weights file) but not run.
        connector: how fused patches become LLM tokens. ``"pooler"`` (the seed): the attention
            pooler's ``num_queries`` tokens, then a linear projection. ``"mlp"`` (LLaVA-1.5's
            projector): two linear layers with GELU over every fused patch, one token per CLIP
            patch (one feature level only).
        clip_feature_layers / dino_feature_layers: hidden-state index per feature level
            (``-2`` = penultimate layer). Both lists have one entry per level.
        queries_per_level: how the learned queries split over the levels (LHRS-Bot: 64/48/32);
            ``None`` lets every query attend to every level.
        num_queries, pooler_layers, pooler_heads, pooler_mlp_ratio: the attention pooler.
        pooler_pos_embed: add a learned 2-D position embedding to the fused grid before pooling.
        pooler_locality_prior: start each query attending around its own point of the grid
            (see :class:`aerith.models.pooler.AttentionPooler`); without it a fresh pooler
            averages position away and grounding is slow to learn from scratch.
        position_code: start the image tokens' positions in the coordinate tokens' code: the grid's
            position embedding (the pooler's, or one added before the MLP connector) and the pooler's
            queries start as the Fourier code (:func:`aerith.models.coordinate_tokens.fourier_code`) of
            their x and y on the 0-1000 grid, at unit norm. Learned from there. Without it a model
            trained from scratch has no way to say where an image token is (the queries start at
            std 0.02 and CLIP's position embeddings are random), and outputs one box for every image.
        box_head: add a box head (:class:`aerith.models.box_head.BoxHead`) that answers grounding
            prompts from a patch grid (``box_head_input``), steered by the language model's last hidden state at the
            end of the prompt; :class:`aerith.AerithVLM` then writes a ``[VG]`` answer's box from it
            instead of generating the box text (the language model still learns the box text).
            Without it a small model trained from scratch does not learn to find the named object
            (``benchmarks/RESULTS.md``, ``grounding_experiments``).
        box_head_input: the grid the box head reads: ``"clip"`` (CLIP's patch tokens at the first
            of ``clip_feature_layers``, as OWL-ViT's heads read its CLIP backbone's) or ``"fused"`` (the
            first level of the fused grid). On aerith-tiny's random towers, CLIP's tokens gave 22%
            held-out Acc@0.5 against 18% for the fused grid (the DINOv3 half, a 7x7 grid resampled to
            8x8, blurs where things are; benchmarks/RESULTS.md, grounding_experiments).
        box_loss_weight: weight of the box head's loss (per grounding sample) beside the summed
            answer-token cross-entropy in instruction tuning, as DETR's configs hold their loss weights.
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
    connector: str = "pooler"
    clip_feature_layers: list[int] = field(default_factory=lambda: [-2])
    dino_feature_layers: list[int] = field(default_factory=lambda: [-1])
    queries_per_level: list[int] | None = None
    num_queries: int = 144
    pooler_layers: int = 6
    pooler_heads: int = 16
    pooler_mlp_ratio: float = 4.0
    pooler_pos_embed: bool = True
    pooler_locality_prior: bool = True
    position_code: bool = False
    box_head: bool = False
    box_head_input: str = "clip"
    box_loss_weight: float = 1.0
    image_token_id: int = 32000
    training_state: str = "random-init"
    lora: dict | None = None
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        _check_types(self)
        self.clip_feature_layers = list(self.clip_feature_layers)
        self.dino_feature_layers = list(self.dino_feature_layers)
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.connector not in CONNECTORS:
            raise ValueError(f"connector must be one of {CONNECTORS}, got {self.connector!r}")
        if self.connector == "mlp" and len(self.clip_feature_layers) != 1:
            raise ValueError(
                f"connector 'mlp' reads one feature level (LLaVA-1.5), got {len(self.clip_feature_layers)}: "
                "use one entry in clip_feature_layers and dino_feature_layers, or connector 'pooler'"
            )
        if len(self.clip_feature_layers) != len(self.dino_feature_layers) or not self.clip_feature_layers:
            raise ValueError(
                "clip_feature_layers and dino_feature_layers need one entry per feature level, got "
                f"{self.clip_feature_layers} and {self.dino_feature_layers}"
            )
        if self.queries_per_level is not None:
            self.queries_per_level = list(self.queries_per_level)
            if len(self.queries_per_level) != self.num_levels or sum(self.queries_per_level) != self.num_queries:
                raise ValueError(
                    f"queries_per_level {self.queries_per_level} must have {self.num_levels} entries "
                    f"summing to num_queries={self.num_queries}"
                )
        for name in ("num_queries", "pooler_layers", "pooler_heads", "fusion_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not math.isfinite(self.pooler_mlp_ratio) or self.pooler_mlp_ratio <= 0:
            raise ValueError(f"pooler_mlp_ratio must be a finite number > 0, got {self.pooler_mlp_ratio}")
        for name, tower in (("clip_feature_layers", self.clip_config), ("dino_feature_layers", self.dino_config)):
            depth = int(tower.num_hidden_layers)  # hidden_states holds the embeddings and each layer's output
            bad = [i for i in getattr(self, name) if not -(depth + 1) <= i <= depth]
            if bad:
                raise ValueError(f"{name}: layer {bad[0]} is not one of the tower's {depth} layers (valid: {-(depth + 1)} to {depth})")
        if self.fusion_dim % self.pooler_heads:
            raise ValueError(f"fusion_dim={self.fusion_dim} is not divisible by pooler_heads={self.pooler_heads}")
        if self.lora is not None:
            from aerith.models.lora import LoraSettings

            self.lora = LoraSettings(**self.lora).to_dict()  # validates
        if self.box_head_input not in BOX_HEAD_INPUTS:
            raise ValueError(f"box_head_input must be one of {BOX_HEAD_INPUTS}, got {self.box_head_input!r}")
        if self.box_head and self.box_head_input == "clip" and self.fusion == "dino":
            raise ValueError("box_head_input 'clip' reads CLIP's patch tokens, which fusion 'dino' does not compute; use 'fused'")
        if not math.isfinite(self.box_loss_weight) or self.box_loss_weight < 0:
            raise ValueError(f"box_loss_weight must be a finite number >= 0, got {self.box_loss_weight}")

    @property
    def num_levels(self) -> int:
        return len(self.clip_feature_layers)

    @property
    def num_image_tokens(self) -> int:
        """Tokens one image becomes in the LLM: ``num_queries`` (pooler) or one per CLIP patch (mlp)."""
        return self.num_queries if self.connector == "pooler" else self.clip_grid**2

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


# Next to the class, so that AutoConfig knows it wherever it is imported (see aerith.models.auto).
AutoConfig.register(AerithConfig.model_type, AerithConfig, exist_ok=True)

__all__ = ["AerithConfig"]
