"""Inference: the AerithVLM facade."""
