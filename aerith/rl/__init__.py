"""Reinforcement learning for captions: self-critical sequence training (SCST).

:mod:`aerith.rl.policy` samples captions and scores their log-probabilities (one policy per
model family); :mod:`aerith.rl.rewards` is the reward table. The training stage that uses
both is :mod:`aerith.train.scst`.
"""
