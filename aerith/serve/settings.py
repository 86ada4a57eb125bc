"""Settings of ``aerith serve``, checked when made."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class ServeSettings:
    """What ``aerith serve`` serves, where, and within which limits.

    Args:
        model: a preset, a saved model folder or a run folder (see :func:`aerith.load_vlm`).
        host, port: where to listen (``127.0.0.1``: this machine only).
        api_key: when set, every endpoint but ``/health`` wants ``Authorization: Bearer KEY``.
        allow_dir: local image paths are read only under this folder; without it, only data URLs.
        max_batch: most requests generated together.
        batch_window_ms: longest a request waits for others still being prepared, to batch with them.
        max_body_mb: larger request bodies get 413.
        max_image_pixels: larger images (width x height) get 400.
        max_queue: more waiting requests get 429.
        max_tokens: answer length when a request gives none (capped by the model's context).
        served_name: the model's id in the API; default ``model`` as given.
        seed: seeds a random-weight preset; device: ``cpu``, ``cuda`` ... (default: CUDA if present).
    """

    model: str
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    allow_dir: Path | None = None
    max_batch: int = 16
    batch_window_ms: float = 10.0
    max_body_mb: float = 20.0
    max_image_pixels: int = 25_000_000
    max_queue: int = 256
    max_tokens: int = 256
    served_name: str | None = None
    seed: int = 0
    device: str | None = None

    def __post_init__(self) -> None:
        checks = {
            "port": 0 <= self.port <= 65535,
            "max_batch": self.max_batch >= 1,
            "batch_window_ms": self.batch_window_ms >= 0,
            "max_body_mb": self.max_body_mb > 0,
            "max_image_pixels": self.max_image_pixels >= 1,
            "max_queue": self.max_queue >= 1,
            "max_tokens": self.max_tokens >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(", ".join(f"{name}={getattr(self, name)!r} is out of range" for name in bad))
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key is empty; leave it out to serve without a key")
        if self.allow_dir is not None:
            self.allow_dir = Path(self.allow_dir)
            if not self.allow_dir.is_dir():
                raise ValueError(f"allow_dir {self.allow_dir}: not a folder")

    @property
    def name(self) -> str:
        return self.served_name or self.model

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


__all__ = ["ServeSettings"]
