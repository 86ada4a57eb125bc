"""Serving a model: an OpenAI-compatible HTTP server with dynamic batching (``aerith serve``).

Layers, each usable alone:

- :mod:`aerith.serve.engine`: requests -> prepared inputs; one batched ``generate`` (per-row
  lengths, stop strings and streaming).
- :mod:`aerith.serve.batcher`: :class:`Batcher`, the queue and its worker thread, the
  in-process API that front ends share (``submit``, ``stream``).
- :mod:`aerith.serve.service`: :class:`ModelService`, one model + one queue + task prompts.
- :mod:`aerith.serve.app` / :mod:`aerith.serve.server`: the FastAPI app and uvicorn
  (needs the ``serve`` extra: ``pip install 'aerith[serve]'``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Batcher": "aerith.serve.batcher",
    "QueueFullError": "aerith.serve.batcher",
    "Completion": "aerith.serve.engine",
    "GenerationSettings": "aerith.serve.engine",
    "ModelService": "aerith.serve.service",
    "ServeSettings": "aerith.serve.settings",
    "BackgroundServer": "aerith.serve.server",
    "create_app": "aerith.serve.app",
    "run_server": "aerith.serve.server",
    "data_url": "aerith.serve.images",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aerith.serve' has no attribute {name!r}")


__all__ = list(_LAZY)
