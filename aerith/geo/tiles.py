"""The tile grid of a scan: windows of ``tile`` pixels a side with a fixed overlap.

Tiles start every ``stride = tile - round(overlap * tile)`` pixels; the last
row and column are moved back so that they end at the raster's edge, so every
tile has the full size and no pixel is left out (SAHI's slicing does the same).
Tiles are numbered row by row; the scan order, the journal and the outputs use
that number.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property


def offsets(length: int, tile: int, stride: int) -> list[int]:
    """Start offsets along one axis of ``length`` pixels; the last tile ends at ``length``."""
    if tile > length:
        raise ValueError(f"tile {tile} is larger than the axis ({length} px)")
    out = list(range(0, length - tile + 1, stride))
    if out[-1] + tile < length:
        out.append(length - tile)
    return out


@dataclass(frozen=True)
class Tile:
    """One window of the raster.

    Attributes:
        index: the tile's number, row by row.
        row, col: its place in the tile grid.
        x, y: column and row offset of its top-left pixel in the raster.
        size: side in pixels.
        edges: for left, top, right, bottom: whether that side lies inside the raster
            (a box touching such a side may be cut off by it).
    """

    index: int
    row: int
    col: int
    x: int
    y: int
    size: int
    edges: tuple[bool, bool, bool, bool]

    @property
    def bounds(self) -> tuple[int, int, int, int]:
        """``(x1, y1, x2, y2)`` in raster pixels, exclusive ends."""
        return self.x, self.y, self.x + self.size, self.y + self.size


@dataclass(frozen=True)
class TileGrid:
    """All tiles of a ``width`` x ``height`` raster."""

    width: int
    height: int
    tile: int
    overlap: float

    def __post_init__(self) -> None:
        if self.tile < 1:
            raise ValueError(f"tile must be at least 1 px, got {self.tile}")
        if not 0.0 <= self.overlap < 1.0:
            raise ValueError(f"overlap must be a fraction in [0, 1), got {self.overlap}")
        if self.tile > self.width or self.tile > self.height:
            raise ValueError(
                f"tile {self.tile} px is larger than the raster ({self.width} x {self.height} px); "
                f"use a tile of at most {min(self.width, self.height)} px"
            )

    @property
    def stride(self) -> int:
        return max(1, self.tile - round(self.overlap * self.tile))

    @cached_property
    def xs(self) -> list[int]:
        return offsets(self.width, self.tile, self.stride)

    @cached_property
    def ys(self) -> list[int]:
        return offsets(self.height, self.tile, self.stride)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        return len(self.ys), len(self.xs)

    def __len__(self) -> int:
        rows, cols = self.shape
        return rows * cols

    def __getitem__(self, index: int) -> Tile:
        rows, cols = self.shape
        if not 0 <= index < rows * cols:
            raise IndexError(f"tile {index} out of range: the grid has {rows * cols} tiles")
        row, col = divmod(index, cols)
        x, y = self.xs[col], self.ys[row]
        edges = (x > 0, y > 0, x + self.tile < self.width, y + self.tile < self.height)
        return Tile(index, row, col, x, y, self.tile, edges)

    def __iter__(self) -> Iterator[Tile]:
        xs, ys = self.xs, self.ys
        for row, y in enumerate(ys):
            for col, x in enumerate(xs):
                edges = (x > 0, y > 0, x + self.tile < self.width, y + self.tile < self.height)
                yield Tile(row * len(xs) + col, row, col, x, y, self.tile, edges)
