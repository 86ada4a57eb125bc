"""Named model presets, apart from weights (open_clip's habit).

A preset is a config plus where its weights come from. ``aerith-7b`` and
``aerith-7b-sat`` name real hub checkpoints (the pretrained towers and LLM;
the pooler, projector and LoRA start untrained). ``aerith-tiny`` is the same
classes at toy width with random weights and an offline tokenizer, for tests
and the quickstart: its outputs mean nothing until it is trained.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aerith.models.configuration_aerith import CLIP_VIT_L14, DINOV3_VIT_B16, AerithConfig

LLAMA2_7B_CHAT = dict(
    model_type="llama",
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32000,
    max_position_embeddings=4096,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)
# DINOv3 ViT-L/16 distilled on SAT-493M satellite imagery (facebook/dinov3-vitl16-pretrain-sat493m).
DINOV3_VIT_L16_SAT = dict(
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    patch_size=16,
    image_size=224,
    num_register_tokens=4,
    key_bias=False,
)


@dataclass(frozen=True)
class Preset:
    """A named model: its config, and the hub ids its pretrained parts load from (``None``: random)."""

    name: str
    description: str
    make_config: Callable[[], AerithConfig]
    clip_id: str | None = None
    dino_id: str | None = None
    llm_id: str | None = None
    tokenizer_id: str | None = None  # None: the offline tiny tokenizer

    @property
    def random_weights(self) -> bool:
        return self.llm_id is None


def _seed_config(dino: dict) -> AerithConfig:
    return AerithConfig(
        clip_config=dict(CLIP_VIT_L14),
        dino_config=dict(dino),
        text_config=dict(LLAMA2_7B_CHAT, vocab_size=32002),  # + <image> and <pad>
        fusion_dim=768,
        num_queries=144,
        pooler_layers=6,
        pooler_heads=16,
        image_token_id=32000,
        training_state="random-init pooler, projector and LoRA; pretrained towers and LLM",
    )


TINY_VOCAB = 3382  # size of build_tiny_tokenizer(); checked when the preset is built


def _tiny_config() -> AerithConfig:
    return AerithConfig(
        clip_config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, patch_size=8, image_size=64
        ),
        # 7x7 DINO grid against CLIP's 8x8, as 14x14 against 16x16 in the seed, so resampling is exercised.
        dino_config=dict(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            patch_size=8,
            image_size=56,
            num_register_tokens=2,
        ),
        text_config=dict(
            model_type="llama",
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            vocab_size=TINY_VOCAB,
            max_position_embeddings=512,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
            tie_word_embeddings=False,
        ),
        fusion_dim=64,
        num_queries=36,  # a 6x6 grid of query centres for the locality prior (the seed: 12x12 = 144)
        pooler_layers=2,
        pooler_heads=4,
        image_token_id=4,
        training_state="random-init",
    )


PRESETS: dict[str, Preset] = {
    "aerith-7b": Preset(
        name="aerith-7b",
        description="CLIP ViT-L/14 + DINOv3 ViT-B/16, 144-query pooler, Llama-2-7B-Chat (the seed design)",
        make_config=lambda: _seed_config(DINOV3_VIT_B16),
        clip_id="openai/clip-vit-large-patch14",
        dino_id="facebook/dinov3-vitb16-pretrain-lvd1689m",
        llm_id="meta-llama/Llama-2-7b-chat-hf",
        tokenizer_id="meta-llama/Llama-2-7b-chat-hf",
    ),
    "aerith-7b-sat": Preset(
        name="aerith-7b-sat",
        description="aerith-7b with tower B = DINOv3 ViT-L/16 pretrained on satellite imagery (SAT-493M)",
        make_config=lambda: _seed_config(DINOV3_VIT_L16_SAT),
        clip_id="openai/clip-vit-large-patch14",
        dino_id="facebook/dinov3-vitl16-pretrain-sat493m",
        llm_id="meta-llama/Llama-2-7b-chat-hf",
        tokenizer_id="meta-llama/Llama-2-7b-chat-hf",
    ),
    "aerith-tiny": Preset(
        name="aerith-tiny",
        description="toy-width AerithVLM with RANDOM weights and an offline tokenizer (tests, quickstart)",
        make_config=_tiny_config,
    ),
}


def list_presets() -> list[str]:
    return sorted(PRESETS)


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known presets: {', '.join(list_presets())}")
    return PRESETS[name]
