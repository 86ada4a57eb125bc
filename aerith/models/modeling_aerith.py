"""AerithForConditionalGeneration: CLIP + DINOv3 patch features, an attention pooler, a causal LM.

Built like transformers' LLaVA family: a composite config, the processor
expands one ``<image>`` placeholder to ``config.num_image_tokens`` tokens, and the
image features (pooled by the attention pooler, or one per patch through the MLP
connector) replace them with ``masked_scatter``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModelForCausalLM, AutoModelForImageTextToText, CLIPVisionModel, DINOv3ViTModel, GenerationMixin, PreTrainedModel
from transformers.conversion_mapping import register_checkpoint_conversion_mapping
from transformers.core_model_loading import ConversionOps, WeightConverter
from transformers.modeling_outputs import CausalLMOutputWithPast

from aerith.models.box_head import BoxHead
from aerith.models.configuration_aerith import AerithConfig
from aerith.models.lora import LoraSettings, inject_lora, merge_lora
from aerith.models.pooler import (
    AttentionPooler,
    GridPositionEmbedding,
    PoolerLayer,
    grid_points,
    position_code,
    query_points,
)


@dataclass
class AerithCausalLMOutput(CausalLMOutputWithPast):
    """The language model's output, plus the box head's when a forward pass asks for it.

    Attributes:
        box_scores: ``(B, N)`` one score per patch of the grid the head reads (``config.box_head_input``).
        pred_boxes: ``(B, N, 4)`` each patch's box, ``(x1, y1, x2, y2)`` in [0, 1] of the image.
        box_loss: the box head's loss summed over the rows given a target box.
    """

    box_scores: torch.FloatTensor | None = None
    pred_boxes: torch.FloatTensor | None = None
    box_loss: torch.FloatTensor | None = None


class AerithPreTrainedModel(PreTrainedModel):
    config_class = AerithConfig
    config: AerithConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    input_modalities = ("image", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["CLIPEncoderLayer", "DINOv3ViTLayer", "LlamaDecoderLayer", "PoolerLayer"]

    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        coded = getattr(self.config, "position_code", False)
        if isinstance(module, AttentionPooler):
            # Small, as BLIP-2's query tokens: queries of unit norm drown the image in the residual
            # stream (on aerith-tiny the pooled tokens then differed across images by 20% of their
            # norm, against 89% at std 0.02), and the language model learns to ignore them.
            nn.init.normal_(module.queries, std=0.02)
            module.reset_attn_bias()
            if module.pos_embed is not None:
                nn.init.normal_(module.pos_embed, std=0.02)
            if module.level_embed is not None:
                nn.init.normal_(module.level_embed, std=0.02)
            if coded:  # where each query and patch is, in the coordinate tokens' code (see AerithConfig)
                dim = module.queries.shape[1]
                with torch.no_grad():
                    module.queries.copy_(position_code(query_points(len(module.queries), module.groups), dim))
                    if module.pos_embed is not None:
                        module.pos_embed.copy_(position_code(grid_points(len(module.pos_embed)), dim))
        if isinstance(module, GridPositionEmbedding):
            with torch.no_grad():
                module.weight.copy_(position_code(grid_points(len(module.weight)), module.weight.shape[1]))
        if isinstance(module, PoolerLayer):
            nn.init.ones_(module.locality)


class AerithForConditionalGeneration(AerithPreTrainedModel, GenerationMixin):
    """AerithVLM. Inputs: token ids with ``config.num_image_tokens`` image tokens per image, CLIP and DINOv3 pixels.

    The towers are frozen at construction (``requires_grad=False``); a training
    recipe may unfreeze them. Every other part trains.
    """

    def __init__(self, config: AerithConfig) -> None:
        super().__init__(config)
        dim = config.fusion_dim
        self.clip_tower = CLIPVisionModel(config.clip_config)
        self.dino_tower = DINOv3ViTModel(config.dino_config)
        levels = config.num_levels
        self.clip_proj = nn.ModuleList(nn.Linear(config.clip_config.hidden_size, dim) for _ in range(levels))
        # The alignment head, trained in stage 1 to map DINOv3 features into CLIP's (projected) space.
        self.dino_head = nn.ModuleList(nn.Linear(config.dino_config.hidden_size, dim) for _ in range(levels))
        self.fuse = (
            nn.ModuleList(nn.Linear(2 * dim, dim) for _ in range(levels)) if config.fusion == "concat" else None
        )
        width = config.text_config.hidden_size
        if config.connector == "pooler":
            self.pooler = AttentionPooler(
                dim=dim,
                num_queries=config.num_queries,
                layers=config.pooler_layers,
                heads=config.pooler_heads,
                mlp_ratio=config.pooler_mlp_ratio,
                grid_tokens=config.clip_grid**2,
                num_levels=levels,
                queries_per_level=config.queries_per_level,
                pos_embed=config.pooler_pos_embed,
                locality_prior=config.pooler_locality_prior,
            )
            self.projector = nn.Linear(dim, width)
        else:  # "mlp": LLaVA-1.5's projector over every fused patch
            self.pooler = None
            self.projector = nn.Sequential(nn.Linear(dim, width), nn.GELU(), nn.Linear(width, width))
        # the MLP connector's grid position embedding (the pooler has its own)
        self.grid_position = (
            GridPositionEmbedding(config.clip_grid**2, dim) if config.connector == "mlp" and config.position_code else None
        )
        box_input = config.clip_config.hidden_size if config.box_head_input == "clip" else dim
        self.box_head = BoxHead(box_input, dim, width, config.clip_grid**2) if config.box_head else None
        self.language_model = AutoModelForCausalLM.from_config(config.text_config)
        self.post_init()
        if config.lora is not None:
            inject_lora(self.language_model, LoraSettings(**config.lora))
        self.clip_tower.requires_grad_(False)
        self.dino_tower.requires_grad_(False)

    def add_lora(self, settings: LoraSettings) -> None:
        """Put LoRA adapters on the language model; the config records them for from_pretrained."""
        if self.config.lora is not None:
            raise ValueError(f"this model already has LoRA adapters: {self.config.lora}")
        inject_lora(self.language_model, settings)
        self.config.lora = settings.to_dict()

    def merge_lora(self) -> None:
        """Fold the LoRA adapters into the language model's weights (outputs unchanged)."""
        if self.config.lora is None:
            raise ValueError("this model has no LoRA adapters to merge")
        merge_lora(self.language_model)
        self.config.lora = None

    # -- embeddings, so that resize_token_embeddings, peft and generate work -------------------------
    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    def set_output_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_output_embeddings(value)

    # -- vision -------------------------------------------------------------------------------------
    def _tower_context(self, tower: nn.Module):
        trainable = any(p.requires_grad for p in tower.parameters())
        return contextlib.nullcontext() if trainable and torch.is_grad_enabled() else torch.no_grad()

    def clip_patch_features(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """CLIP patch tokens (CLS dropped) per level: ``(B, G*G, clip_hidden)``."""
        with self._tower_context(self.clip_tower):
            out = self.clip_tower(pixel_values=pixel_values, output_hidden_states=True)
        return [out.hidden_states[i][:, 1:] for i in self.config.clip_feature_layers]

    def dino_patch_features(self, dino_pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """DINOv3 patch tokens per level, CLS/registers dropped, resampled to CLIP's grid: ``(B, G*G, dino_hidden)``."""
        cfg = self.config
        with self._tower_context(self.dino_tower):
            out = self.dino_tower(pixel_values=dino_pixel_values, output_hidden_states=True)
        side, target = cfg.dino_grid, cfg.clip_grid
        feats = []
        for i in cfg.dino_feature_layers:
            patches = out.hidden_states[i][:, cfg.dino_prefix_tokens :]
            if patches.shape[1] != side * side:
                raise ValueError(
                    f"DINOv3 returned {patches.shape[1]} patch tokens, expected {side}x{side} "
                    f"from image_size={cfg.dino_config.image_size} and patch_size={cfg.dino_config.patch_size}"
                )
            if side != target:
                grid = patches.transpose(1, 2).reshape(patches.shape[0], -1, side, side)
                grid = F.interpolate(grid, size=(target, target), mode="bilinear", align_corners=False)
                patches = grid.flatten(2).transpose(1, 2)
            feats.append(patches)
        return feats

    def fuse_features(self, clip_feats: list[torch.Tensor], dino_feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Project both towers to ``fusion_dim`` and fuse per level: ``(B, G*G, fusion_dim)`` each."""
        fused = []
        for level, (c, d) in enumerate(zip(clip_feats, dino_feats)):
            c = self.clip_proj[level](c.to(self.clip_proj[level].weight.dtype))
            d = self.dino_head[level](d.to(self.dino_head[level].weight.dtype))
            fused.append(c + d if self.fuse is None else self.fuse[level](torch.cat([c, d], dim=-1)))
        return fused

    def image_grids(
        self, pixel_values: torch.Tensor, dino_pixel_values: torch.Tensor, clip_feats: list[torch.Tensor] | None = None
    ) -> list[torch.Tensor]:
        """Fused patch grids per level ``(B, G*G, fusion_dim)``; a single-tower fusion runs only its tower.

        ``clip_feats``: CLIP's patch features if already computed (:meth:`clip_patch_features`).
        """
        fusion = self.config.fusion
        if fusion == "dino":
            feats = self.dino_patch_features(dino_pixel_values)
            return [head(d.to(head.weight.dtype)) for head, d in zip(self.dino_head, feats)]
        clip_feats = self.clip_patch_features(pixel_values) if clip_feats is None else clip_feats
        if fusion == "clip":
            return [proj(c.to(proj.weight.dtype)) for proj, c in zip(self.clip_proj, clip_feats)]
        return self.fuse_features(clip_feats, self.dino_patch_features(dino_pixel_values))

    def grids_and_box_input(
        self, pixel_values: torch.Tensor, dino_pixel_values: torch.Tensor
    ) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The fused grids per level and the grid the box head reads (``config.box_head_input``):
        the first fused level, or CLIP's patch tokens at its first feature layer."""
        if self.config.box_head_input == "clip":
            clip_feats = self.clip_patch_features(pixel_values)
            return self.image_grids(pixel_values, dino_pixel_values, clip_feats), clip_feats[0]
        fused = self.image_grids(pixel_values, dino_pixel_values)
        return fused, fused[0]

    def connector_parameters(self) -> list[nn.Parameter]:
        """Parameters of the connector that turns fused patches into LLM tokens (pooler + projector, or the MLP)."""
        parts = [self.projector] if self.pooler is None else [self.pooler, self.projector]
        if self.grid_position is not None:
            parts.append(self.grid_position)
        return [p for part in parts for p in part.parameters()]

    def get_image_features(self, pixel_values: torch.Tensor, dino_pixel_values: torch.Tensor) -> torch.Tensor:
        """Pixels of both towers ``(B, 3, H, W)`` -> LLM-ready image tokens ``(B, num_image_tokens, llm_width)``.

        ``num_image_tokens`` is ``num_queries`` for the pooler connector, one per CLIP patch for the MLP.
        """
        return self.connect(self.image_grids(pixel_values, dino_pixel_values))

    def connect(self, fused: list[torch.Tensor]) -> torch.Tensor:
        """Fused patch grids per level -> LLM-ready image tokens (the connector)."""
        if self.pooler is None:
            grid = fused[0] if self.grid_position is None else self.grid_position(fused[0])
            return self.projector(grid)
        return self.projector(self.pooler(fused))

    def merge_image_features(
        self, input_ids: torch.Tensor, inputs_embeds: torch.Tensor, image_features: torch.Tensor
    ) -> torch.Tensor:
        """Write ``image_features`` into the ``<image>`` token positions; ValueError when counts differ."""
        mask = input_ids == self.config.image_token_id
        n_tokens = int(mask.sum())
        n_features = image_features.shape[0] * image_features.shape[1]
        if n_tokens != n_features:
            raise ValueError(
                f"Image features and image tokens do not match: {n_tokens} <image> tokens in the text, "
                f"{n_features} image features ({image_features.shape[0]} image(s) x {image_features.shape[1]} tokens)"
            )
        mask = mask.unsqueeze(-1).expand_as(inputs_embeds)
        return inputs_embeds.masked_scatter(mask, image_features.to(inputs_embeds.dtype))

    # -- language -----------------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        pixel_values: torch.Tensor | None = None,
        dino_pixel_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        image_features: torch.Tensor | None = None,
        box_query_index: torch.LongTensor | None = None,
        box_targets: torch.Tensor | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Causal-LM forward.

        Args:
            input_ids: ``(B, T)`` with ``config.num_image_tokens`` image tokens per image.
            pixel_values / dino_pixel_values: ``(B_img, 3, H, W)`` for CLIP / DINOv3.
            image_features: precomputed ``get_image_features`` output ``(B_img, Q, llm_width)``,
                used instead of pixels (e.g. one encoding shared by several sampled captions).
            labels: ``(B, T)`` with -100 where no loss is taken.
            box_query_index: ``(B,)`` for a model with a box head: the position whose last hidden
                state steers the head (the prompt's last token), -1 for rows that are not grounding.
                Needs the pixels (the head reads a patch grid), one image per row.
            box_targets: ``(B, 4)`` target boxes ``(x1, y1, x2, y2)`` in [0, 1] for the rows with a
                query index; the output's ``box_loss`` sums the head's loss over those rows.

        Returns:
            the language model's output; with ``box_query_index``, an :class:`AerithCausalLMOutput`
            (``box_scores``, ``pred_boxes``, ``box_loss``).
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        if inputs_embeds is None:
            inputs_embeds = self.get_input_embeddings()(input_ids)
        grid = None
        if image_features is None and pixel_values is not None:
            if dino_pixel_values is None:
                raise ValueError("pixel_values for CLIP were given without dino_pixel_values for DINOv3")
            if self.box_head is not None and box_query_index is not None:
                fused, grid = self.grids_and_box_input(pixel_values, dino_pixel_values)
            else:
                fused = self.image_grids(pixel_values, dino_pixel_values)
            image_features = self.connect(fused)
        if image_features is not None:
            if input_ids is None:
                raise ValueError("image inputs need input_ids to locate the <image> tokens")
            inputs_embeds = self.merge_image_features(input_ids, inputs_embeds, image_features)
        boxes_wanted = self.box_head is not None and box_query_index is not None
        if boxes_wanted:
            kwargs["output_hidden_states"] = True
        out = self.language_model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            labels=labels,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )
        if not boxes_wanted:
            return out
        boxes = self._boxes(grid, out.hidden_states[-1], box_query_index, box_targets)
        if type(out) is CausalLMOutputWithPast:
            return AerithCausalLMOutput(**out, **boxes)
        for key, value in boxes.items():  # another LM's output class (e.g. with MoE losses): add the fields
            out[key] = value
        return out

    def _boxes(
        self, grid: torch.Tensor | None, hidden: torch.Tensor, query_index: torch.Tensor, targets: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        if grid is None:
            raise ValueError("box_query_index needs pixel_values and dino_pixel_values: the box head reads the patch grid")
        if grid.shape[0] != hidden.shape[0]:
            raise ValueError(f"the box head needs one image per row, got {grid.shape[0]} images for {hidden.shape[0]} rows")
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        # every row runs through the head (a row that is not grounding reads position 0 and is left
        # out of the loss), so that the head takes part in every step under DDP
        asked = query_index >= 0
        scores, boxes = self.box_head(grid, hidden[rows, query_index.clamp(min=0)])
        out = {"box_scores": scores, "pred_boxes": boxes}
        if targets is not None:
            if bool(asked.any()):
                out["box_loss"] = self.box_head.loss(scores[asked], boxes[asked], targets[asked])
            else:
                out["box_loss"] = (scores.sum() + boxes.sum()) * 0.0
        return out

    @torch.no_grad()
    def locate(
        self,
        input_ids: torch.LongTensor,
        pixel_values: torch.Tensor,
        dino_pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``(B, 4)``: the box head's answer to left-padded grounding prompts, ``(x1, y1, x2, y2)`` in [0, 1].

        The head is steered by the hidden state of each prompt's last token, the one ``generate``
        would write the box text from.
        """
        if self.box_head is None:
            raise ValueError("this model has no box head (config.box_head is false); generate the box text instead")
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        if bool((attention_mask[:, -1] == 0).any()):
            raise ValueError("locate reads each prompt's last position: pad the batch on the left (padding_side='left')")
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # as generate numbers left-padded rows
        last = torch.full((input_ids.shape[0],), input_ids.shape[1] - 1, dtype=torch.long, device=input_ids.device)
        out = self(
            input_ids=input_ids,
            pixel_values=pixel_values,
            dino_pixel_values=dino_pixel_values,
            attention_mask=attention_mask,
            position_ids=position_ids,
            logits_to_keep=1,
            box_query_index=last,
            use_cache=False,
        )
        return BoxHead.best(out.box_scores, out.pred_boxes)

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        # The image is read once, in the prefill step; later steps reuse the KV cache.
        inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        if not is_first_iteration and kwargs.get("use_cache", True):
            for key in ("dino_pixel_values", "image_features"):
                inputs.pop(key, None)
        return inputs


class ReshapeToParameter(ConversionOps):
    """Reshape a saved tensor to the shape of the model's parameter it loads into (same number of elements)."""

    @torch.no_grad()
    def convert(self, input_dict, source_patterns, target_patterns, **kwargs):
        (tensors,) = input_dict.values()
        tensor = tensors[0] if isinstance(tensors, list) else tensors
        name = kwargs["full_layer_name"]
        shape = kwargs["model"].get_parameter(name).shape
        if tensor.numel() != shape.numel():
            raise ValueError(f"{name}: the checkpoint holds shape {tuple(tensor.shape)}, the model needs {tuple(shape)}")
        return {target_patterns[0]: tensor.reshape(shape)}

    @property
    def reverse_op(self) -> ConversionOps:
        return _SaveAsIs()


class _SaveAsIs(ConversionOps):
    """Saving writes the parameter in its current shape."""

    def convert(self, input_dict, source_patterns, target_patterns, **kwargs):
        (tensors,) = input_dict.values()
        return {target_patterns[0]: tensors[0] if isinstance(tensors, list) else tensors}

    @property
    def reverse_op(self) -> ConversionOps:
        return ReshapeToParameter()


# Checkpoints saved before 2026-11-30 hold each pooler layer's locality strength 0-dim; it is 1-D
# now (FSDP shards only tensors of at least one dimension). transformers applies this when loading.
# The pattern is matched as a substring of each key: only the pooler layers hold a "locality".
LOCALITY_CONVERSION = [WeightConverter("locality", "locality", [ReshapeToParameter()])]

# Next to the class, so that the Auto class and the loader know it wherever it is imported (see aerith.models.auto).
AutoModelForImageTextToText.register(AerithConfig, AerithForConditionalGeneration, exist_ok=True)
register_checkpoint_conversion_mapping(AerithForConditionalGeneration.__name__, LOCALITY_CONVERSION, overwrite=True)

__all__ = ["AerithCausalLMOutput", "AerithForConditionalGeneration", "AerithPreTrainedModel"]
