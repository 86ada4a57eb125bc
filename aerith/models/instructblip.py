"""The second backbone: transformers' InstructBLIP (Flan-T5 or Vicuna), with Aerith's data, prompts and trainer.

The facade (``generate``, ``classify`` ... ``save_pretrained``) is
:class:`aerith.infer.instructblip.InstructBlipVLM`; load any kind with :func:`aerith.load_vlm`.

Presets:
- ``instructblip-rs``: Salesforce's InstructBLIP Flan-T5-XL from the hub
  (``Salesforce/instructblip-flan-t5-xl``); SFT trains the Q-Former, the query tokens
  and the language projection on RS instructions.
- ``instructblip-tiny``: the same classes at toy width (Flan-T5-style gated-GELU T5)
  with RANDOM weights and the offline tiny tokenizer (for both the T5 and the Q-Former
  tokenizers), for tests; its config says ``training_state="random-init"``.
- ``instructblip-vicuna-tiny``: the same with a toy decoder-only (Llama-style, as Vicuna)
  language model, RANDOM weights, ``training_state="random-init"``; for tests of the
  decoder-only path (SFT labels over the whole sequence, SCST on left-padded prompts).

The image processor resizes the whole image to a square without a centre crop, so
boxes stay relative to the whole image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import BlipImageProcessorPil, InstructBlipConfig, InstructBlipForConditionalGeneration, InstructBlipProcessor

from aerith.imageio import load_rgb
from aerith.models.processing_aerith import CLIP_MEAN, CLIP_STD


TINY_QUERIES = 16


@dataclass(frozen=True)
class InstructBlipPreset:
    """A named InstructBLIP: the hub id of its weights and processor, or ``None`` for the random tiny one."""

    name: str
    description: str
    hub_id: str | None = None
    language_model: str = "t5"  # the random tiny one's: "t5" (encoder-decoder) or "llama" (decoder-only, as Vicuna)


INSTRUCTBLIP_PRESETS: dict[str, InstructBlipPreset] = {
    "instructblip-rs": InstructBlipPreset(
        "instructblip-rs",
        "Salesforce InstructBLIP Flan-T5-XL; SFT trains Q-Former + query tokens + projection on RS instructions",
        hub_id="Salesforce/instructblip-flan-t5-xl",
    ),
    "instructblip-tiny": InstructBlipPreset(
        "instructblip-tiny", "toy-width InstructBLIP (T5) with RANDOM weights and an offline tokenizer (tests)"
    ),
    "instructblip-vicuna-tiny": InstructBlipPreset(
        "instructblip-vicuna-tiny",
        "toy-width InstructBLIP with a decoder-only (Vicuna-style Llama) language model, RANDOM weights, offline tokenizer (tests)",
        language_model="llama",
    ),
}


def tiny_instructblip_config(vocab_size: int, image_token_id: int) -> InstructBlipConfig:
    """Toy InstructBLIP: 64 px images, a 2-layer ViT and Q-Former, a 2+2-layer gated-GELU T5."""
    return InstructBlipConfig(
        # initializer_range: the vision config's default (1e-10, harmless for hub weights) leaves a random ViT's
        # patch, position and class embeddings at zero, so every image gives the same features.
        vision_config=dict(
            hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, image_size=64, patch_size=8,
            initializer_range=0.02,
        ),
        qformer_config=dict(
            vocab_size=vocab_size,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=128,
            max_position_embeddings=256,
        ),
        text_config=dict(
            model_type="t5",
            vocab_size=vocab_size,
            d_model=128,
            d_kv=32,
            d_ff=256,
            num_layers=2,
            num_decoder_layers=2,
            num_heads=4,
            feed_forward_proj="gated-gelu",
            pad_token_id=0,
            eos_token_id=2,
            decoder_start_token_id=0,
            tie_word_embeddings=False,
        ),
        num_query_tokens=TINY_QUERIES,
        image_token_index=image_token_id,
    )


def tiny_instructblip_vicuna_config(vocab_size: int, image_token_id: int) -> InstructBlipConfig:
    """Toy InstructBLIP-Vicuna: the vision model and Q-Former of :func:`tiny_instructblip_config`, a 2-layer Llama.

    transformers' ``InstructBlipConfig`` sets ``use_decoder_only_language_model`` from the text config's
    model type (a causal LM), which selects the decoder-only path of the model's forward and generate.
    """
    t5 = tiny_instructblip_config(vocab_size, image_token_id)
    return InstructBlipConfig(
        vision_config=t5.vision_config.to_dict(),
        qformer_config=t5.qformer_config.to_dict(),
        text_config=dict(
            model_type="llama",
            vocab_size=vocab_size,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=512,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            tie_word_embeddings=False,
        ),
        num_query_tokens=TINY_QUERIES,
        image_token_index=image_token_id,
    )


def _tiny_processor() -> InstructBlipProcessor:
    from aerith.models.tokenizer import build_tiny_tokenizer

    image_processor = BlipImageProcessorPil(
        size={"height": 64, "width": 64}, image_mean=list(CLIP_MEAN), image_std=list(CLIP_STD), do_convert_rgb=True
    )
    return InstructBlipProcessor(
        image_processor=image_processor,
        tokenizer=build_tiny_tokenizer(),
        qformer_tokenizer=build_tiny_tokenizer(),
        num_query_tokens=TINY_QUERIES,
    )


def is_decoder_only(config: InstructBlipConfig) -> bool:
    """Whether the language model is decoder-only (Vicuna) rather than an encoder-decoder (Flan-T5)."""
    return bool(getattr(config, "use_decoder_only_language_model", False))


def encode_inputs(
    processor: InstructBlipProcessor,
    config: InstructBlipConfig,
    images: Sequence[Any],
    prompts: Sequence[str],
    bands: Sequence[int] | None = None,
    padding_side: str = "right",
) -> dict[str, torch.Tensor]:
    """Images and prompts -> model inputs: ``num_query_tokens`` image tokens, then the prompt.

    ``padding_side``: ``"right"`` (a T5 encoder's input, training) or ``"left"`` (batched generation
    with a decoder-only language model such as Vicuna: the padding goes before the image tokens,
    so that every row ends with its prompt's last token).

    Returns ``pixel_values (B, 3, H, W)``, ``input_ids``/``attention_mask (B, Q + T)`` and
    ``qformer_input_ids``/``qformer_attention_mask (B, T')``.
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
    rgb = [load_rgb(im, bands) for im in images]
    pixel_values = processor.image_processor(images=rgb, return_tensors="pt")["pixel_values"]
    qformer = processor.qformer_tokenizer(list(prompts), padding=True, padding_side="right", return_tensors="pt")
    text = processor.tokenizer(list(prompts), padding=True, padding_side=padding_side, return_tensors="pt")
    batch, queries = len(rgb), config.num_query_tokens
    image_ids = torch.full((batch, queries), config.image_token_index, dtype=torch.long)
    input_ids = torch.cat([image_ids, text["input_ids"]], dim=1)
    attention_mask = torch.cat([torch.ones_like(image_ids), text["attention_mask"]], dim=1)
    if padding_side == "left":  # [pad ... pad, image tokens, prompt]: move each row's padding to its front
        for row in range(batch):
            pads = int((text["attention_mask"][row] == 0).sum())
            if pads:
                input_ids[row] = torch.cat([input_ids[row, queries : queries + pads], input_ids[row, :queries], input_ids[row, queries + pads :]])
                attention_mask[row] = torch.cat([torch.zeros(pads, dtype=attention_mask.dtype), torch.ones(queries, dtype=attention_mask.dtype), attention_mask[row, queries + pads :]])
    return {
        "pixel_values": pixel_values,
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "qformer_input_ids": qformer["input_ids"],
        "qformer_attention_mask": qformer["attention_mask"],
    }


def build_instructblip(
    name: str, *, seed: int = 0, device: str | torch.device = "cpu", dtype: torch.dtype | None = None
) -> tuple[InstructBlipForConditionalGeneration, InstructBlipProcessor]:
    """Model and processor of preset ``name``: random and offline for the tiny ones, hub weights otherwise."""
    if name not in INSTRUCTBLIP_PRESETS:
        raise KeyError(f"unknown InstructBLIP preset {name!r}; known: {', '.join(sorted(INSTRUCTBLIP_PRESETS))}")
    preset = INSTRUCTBLIP_PRESETS[name]
    if preset.hub_id is None:
        processor = _tiny_processor()
        tok = processor.tokenizer
        make_config = tiny_instructblip_vicuna_config if preset.language_model == "llama" else tiny_instructblip_config
        config = make_config(len(tok), tok.convert_tokens_to_ids("<image>"))
        config.training_state = "random-init"
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = InstructBlipForConditionalGeneration(config)
            # transformers starts the query tokens at zero: 16 identical queries give 16 identical outputs
            # until training breaks the symmetry. BLIP-2 draws them from N(0, 0.02).
            torch.nn.init.normal_(model.query_tokens, std=0.02)
    else:
        dtype = dtype or (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
        processor = InstructBlipProcessor.from_pretrained(preset.hub_id)
        model = InstructBlipForConditionalGeneration.from_pretrained(preset.hub_id, dtype=dtype)
        model.config.training_state = f"pretrained {preset.hub_id}; not tuned on RS data"
    model = model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)
    return model.eval(), processor


__all__ = [
    "INSTRUCTBLIP_PRESETS", "build_instructblip", "encode_inputs", "is_decoder_only", "tiny_instructblip_config",
    "tiny_instructblip_vicuna_config",
]
