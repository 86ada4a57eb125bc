"""Inference: :func:`aerith.load_vlm` and the facades it returns (AerithVLM, InstructBlipVLM)."""
