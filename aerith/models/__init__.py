"""AerithVLM and the InstructBLIP backbone, built the transformers way.

- :mod:`~aerith.models.configuration_aerith`: ``AerithConfig`` (composite: CLIP, DINOv3, text configs; connector).
- :mod:`~aerith.models.modeling_aerith`: ``AerithForConditionalGeneration`` (towers, fusion, connector, LLM).
- :mod:`~aerith.models.processing_aerith`: ``AerithProcessor`` (both image processors, tokenizer, chat template).
- :mod:`~aerith.models.pooler`: the attention pooler; :mod:`~aerith.models.lora`: LoRA through peft.
- :mod:`~aerith.models.presets` and :mod:`~aerith.models.build`: named presets, apart from weights.
- :mod:`~aerith.models.instructblip`: InstructBLIP presets and inputs; :mod:`~aerith.models.auto`: Auto-class registration.

Nothing here reads datasets, trains or evaluates (``tests/test_layers.py``); the facades that
load and ask any model kind are in :mod:`aerith.infer`. Submodules import torch and
transformers, so this package imports nothing eagerly.
"""
