"""The web page: look at a scene, ask, see the boxes (``aerith serve --ui``, ``aerith ui``; the ``ui`` extra).

- :mod:`aerith.ui.scene`: uploads (PNG, JPEG, multi-band GeoTIFF) -> RGB, bands, georeference.
- :mod:`aerith.ui.conversation`: tasks, prompts, the multi-turn history, answers and their boxes.
- :mod:`aerith.ui.session`: one visitor's state (scene, turns, region); :mod:`aerith.ui.draw`: drawing.
- :mod:`aerith.ui.export`: the JSON and GeoJSON downloads.
- :mod:`aerith.ui.asking`: asking through the served model's batching queue.
- :mod:`aerith.ui.page` / :mod:`aerith.ui.server`: the Gradio page and how it is served (need Gradio).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "build_page": "aerith.ui.page",
    "PageSettings": "aerith.ui.page",
    "mount_ui": "aerith.ui.server",
    "mount_beside_api": "aerith.ui.server",
    "ui_app": "aerith.ui.server",
    "BackgroundApp": "aerith.ui.server",
    "load_scene": "aerith.ui.scene",
    "Scene": "aerith.ui.scene",
    "Session": "aerith.ui.session",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'aerith.ui' has no attribute {name!r}")


__all__ = list(_LAZY)
