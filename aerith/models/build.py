"""Building models and processors from presets: random tiny ones offline, real ones from the hub."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from aerith.models.configuration_aerith import AerithConfig
from aerith.models.modeling_aerith import AerithForConditionalGeneration
from aerith.models.presets import Preset, get_preset
from aerith.models.processing_aerith import (
    CLIP_MEAN,
    CLIP_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    AerithProcessor,
    square_image_processor,
)
from aerith.models.coordinate_tokens import init_coordinate_embeddings
from aerith.models.tokenizer import IMAGE_TOKEN, add_aerith_tokens, build_tiny_tokenizer

NEW_PARTS = ("clip_proj", "dino_head", "fuse", "pooler", "projector", "grid_position")


def build_processor(config: AerithConfig, tokenizer, bands: list[int] | None = None) -> AerithProcessor:
    """The processor that matches ``config``: tower image sizes, normalisation and image-token count."""
    return AerithProcessor(
        square_image_processor(config.clip_config.image_size, CLIP_MEAN, CLIP_STD),
        square_image_processor(config.dino_config.image_size, IMAGENET_MEAN, IMAGENET_STD),
        tokenizer,
        num_image_tokens=config.num_image_tokens,
        bands=bands,
    )


def check_4bit_available() -> None:
    """4-bit loading needs bitsandbytes kernels on a CUDA GPU; say so clearly otherwise."""
    if not torch.cuda.is_available():
        raise RuntimeError(
            "load_in_4bit needs a CUDA GPU (bitsandbytes 4-bit kernels) and none is available here; "
            "load without 4-bit (fp32/bf16) on this machine"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as err:
        raise ImportError("load_in_4bit needs bitsandbytes: pip install 'aerith[quant]'") from err


def build_meta_model(name: str) -> AerithForConditionalGeneration:
    """The preset's architecture on the meta device: shapes and parameter counts, no memory, no download."""
    with torch.device("meta"):
        return AerithForConditionalGeneration(get_preset(name).make_config())


COORDINATE_INITS = ("fourier", "random")


def config_with_overrides(config: AerithConfig, overrides: Mapping[str, Any]) -> AerithConfig:
    """A copy of ``config`` with dotted fields replaced (``{"connector": "mlp", "clip_config.image_size": 128}``).

    The result is validated as any config is; an unknown field raises ``ValueError`` naming it.
    """
    tree = config.to_dict()
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = tree
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise ValueError(f"config override {key!r}: {part!r} is not a sub-config of AerithConfig")
            node = node[part]
        if last not in node:
            raise ValueError(f"config override {key!r}: no field {last!r}; valid fields: {sorted(node)}")
        node[last] = value
    return AerithConfig.from_dict(tree)


def cast_keeping_float32_buffers(model: torch.nn.Module, device, dtype: torch.dtype | None) -> torch.nn.Module:
    """``model.to(device, dtype)`` that leaves the float non-persistent buffers (RoPE's ``inv_freq``) in float32.

    transformers builds those buffers in float32 whatever the weights' dtype, and ``from_pretrained``
    keeps them so; a plain ``.to(bfloat16)`` would round them (RoPE angles off by up to 0.4% of the
    position), and a bfloat16 model built here would no longer give the logits of itself saved and reloaded.
    """
    if dtype is None:
        return model.to(device)
    kept = [
        (module, name, buf)
        for module in model.modules()
        for name, buf in module._buffers.items()
        if buf is not None and name in module._non_persistent_buffers_set and buf.is_floating_point()
    ]
    model = model.to(device=device, dtype=dtype)
    for module, name, buf in kept:
        module._buffers[name] = buf.to(device)
    return model


def build_from_preset(
    name: str,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    load_in_4bit: bool = False,
    overrides: Mapping[str, Any] | None = None,
    coordinate_init: str = "fourier",
) -> tuple[AerithForConditionalGeneration, AerithProcessor]:
    """Model and processor of preset ``name``.

    Random presets are built offline from ``seed`` (the global RNG is left untouched).
    Hub presets download the towers, the LLM and its tokenizer; the new parts are
    initialised from ``seed``.

    Args:
        overrides: dotted config fields to change in a random preset (see :func:`config_with_overrides`),
            e.g. a variant of ``aerith-tiny`` with another connector or image size; still random weights.
        coordinate_init: ``fourier`` (the number tokens start as an ordinal code, see
            :mod:`aerith.models.coordinate_tokens`) or ``random`` (as every other token).
    """
    preset = get_preset(name)
    if coordinate_init not in COORDINATE_INITS:
        raise ValueError(f"coordinate_init must be one of {COORDINATE_INITS}, got {coordinate_init!r}")
    if load_in_4bit:
        check_4bit_available()
        if preset.random_weights:
            raise ValueError(f"load_in_4bit applies to hub presets, not the random preset {name!r}")
    if overrides and not preset.random_weights:
        raise ValueError(f"config overrides apply to random presets (their weights are built here), not {name!r}")
    if preset.random_weights:
        tokenizer = build_tiny_tokenizer()
        config = preset.make_config()
        if overrides:
            config = config_with_overrides(config, overrides)
        if len(tokenizer) != config.text_config.vocab_size:
            raise RuntimeError(
                f"tiny tokenizer has {len(tokenizer)} tokens but {name} expects {config.text_config.vocab_size}"
            )
        if tokenizer.convert_tokens_to_ids(IMAGE_TOKEN) != config.image_token_id:
            raise RuntimeError(f"{IMAGE_TOKEN} id differs between the tiny tokenizer and the {name} config")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AerithForConditionalGeneration(config)
        if coordinate_init == "fourier":  # every grid integer is one token here: start them ordered
            init_coordinate_embeddings(model, tokenizer, torch.Generator().manual_seed(seed))
        model = cast_keeping_float32_buffers(model, device, dtype)
        return model.eval(), build_processor(config, tokenizer)
    return _from_hub(preset, seed=seed, device=device, dtype=dtype, load_in_4bit=load_in_4bit)


def _from_hub(
    preset: Preset, *, seed: int, device, dtype: torch.dtype | None, load_in_4bit: bool
) -> tuple[AerithForConditionalGeneration, AerithProcessor]:
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, CLIPVisionModel, DINOv3ViTModel

    dtype = dtype or (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(preset.tokenizer_id)
    add_aerith_tokens(tokenizer)
    config = preset.make_config()
    config.image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    config.text_config.vocab_size = len(tokenizer)
    config.text_config.pad_token_id = tokenizer.pad_token_id
    with torch.device("meta"):
        model = AerithForConditionalGeneration(config)
    model.clip_tower = CLIPVisionModel.from_pretrained(preset.clip_id, dtype=dtype).requires_grad_(False)
    model.dino_tower = DINOv3ViTModel.from_pretrained(preset.dino_id, dtype=dtype).requires_grad_(False)
    lm_kwargs: dict = {"dtype": dtype}
    if load_in_4bit:
        lm_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
        lm_kwargs["device_map"] = {"": torch.device(device).index or 0}
    language_model = AutoModelForCausalLM.from_pretrained(preset.llm_id, **lm_kwargs)
    language_model.resize_token_embeddings(len(tokenizer))
    model.language_model = language_model
    model.config.clip_config = model.clip_tower.config
    model.config.dino_config = model.dino_tower.config
    model.config.text_config = language_model.config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for part in NEW_PARTS:
            module = getattr(model, part)
            if module is not None:
                module.to_empty(device="cpu")
                module.apply(model._init_weights)
                module.to(dtype)
    if not load_in_4bit:
        model.to(device)
    else:
        for part in ("clip_tower", "dino_tower", *NEW_PARTS):
            module = getattr(model, part)
            if module is not None:
                module.to(device)
    return model.eval(), build_processor(model.config, tokenizer)
