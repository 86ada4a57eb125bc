"""Reinforcement learning for captions: self-critical sequence training (SCST)."""
