"""`aerith scan`: a whole raster in, georeferenced answers out.

The raster is cut into overlapping tiles (:mod:`aerith.geo.tiles`), read one
window at a time (:mod:`aerith.geo.raster`), and the tiles go through the model
in batches with the task's prompt. Each finished batch is appended to the
journal (:mod:`aerith.geo.journal`), so an interrupted scan resumes at the first
unfinished tile. When every tile is done, the answers become outputs
(:mod:`aerith.geo.outputs`): for ``vg``, the boxes of all tiles, mapped to
raster pixels and merged across overlaps (:mod:`aerith.geo.merge`); for
``cls``, a class per tile and a class map; for ``cap``, a caption per tile.

The model is anything with ``generate(images, prompts, batch_size=...,
max_new_tokens=...) -> list[str]`` (``aerith.load_vlm``'s facade, or a test
double); boxes are read from its answers on the 0-1000 grid and classes are
matched as ``classify`` matches them. Under ``accelerate launch`` the tiles are
shared out over the processes (pass ``state``, e.g. ``accelerate.PartialState()``):
each writes its own journal part and the main process writes the outputs.
"""

from __future__ import annotations

import datetime as dt
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aerith.atomic import atomic_write_text
from aerith.eval.fingerprint import loaded_model_fingerprint
from aerith.geo.errors import ScanError
from aerith.geo.journal import JOURNAL_DIR, Journal
from aerith.geo.merge import MATCH_METRICS, MERGE_METHODS, Detection, cut_sides, merge_detections
from aerith.geo.raster import STATS_SIZE, RasterSource, gdal_env, sha256_file
from aerith.geo.tiles import TileGrid
from aerith.prompts import caption_prompt, classify_prompt, ground_prompt

MANIFEST = "manifest.json"
OUTPUT_NAMES = {
    "vg": ("detections.gpkg", "detections.geojson", "quicklook.png"),
    "cls": ("tiles.gpkg", "tiles.geojson", "classmap.tif", "quicklook.png"),
    "cap": ("tiles.gpkg", "tiles.geojson", "quicklook.png"),
}
NO_CLASS = "(no class)"


class NotGeoreferencedWarning(UserWarning):
    """The raster has no CRS (outputs in its geotransform's map coordinates) or no georeference (pixel coordinates)."""


class Generator(Protocol):
    """The part of the model facade a scan uses."""

    def generate(self, images: Any, prompts: Any, *, batch_size: int = ..., **kwargs: Any) -> Any: ...


class ProcessState(Protocol):
    """Where this process stands in a distributed run (``accelerate.PartialState`` has all of it)."""

    process_index: int
    num_processes: int
    is_main_process: bool

    def wait_for_everyone(self) -> None: ...


@dataclass(frozen=True)
class TaskSpec:
    """What a scan asks of each tile and what it needs to ask it."""

    name: str
    description: str
    needs_query: bool
    needs_classes: bool
    prompt: Callable[[ScanConfig], str]


TASKS: dict[str, TaskSpec] = {
    "vg": TaskSpec("vg", "boxes of what --query describes", True, False, lambda c: ground_prompt(c.query or "")),
    "cls": TaskSpec("cls", "a scene class per tile, from --classes", False, True, lambda c: classify_prompt(c.classes or ())),
    "cap": TaskSpec("cap", "a caption per tile", False, False, lambda c: caption_prompt()),
}


@dataclass(frozen=True)
class ScanConfig:
    """Settings of a scan.

    Attributes:
        task: ``vg``, ``cls`` or ``cap`` (see :data:`TASKS`).
        query: what to find (``vg``), e.g. ``"storage tank"``.
        classes: the scene classes (``cls``).
        tile: tile side in raster pixels (the model resizes each tile to its input size).
        overlap: fraction of the tile shared with the next one.
        bands: 0-based bands shown as RGB (1 or 3), e.g. ``(3, 2, 1)``.
        batch_size: tiles per ``generate`` call.
        max_new_tokens: longest answer.
        merge: ``nmm`` (union of duplicates) or ``nms`` (keep one), see :mod:`aerith.geo.merge`.
        match_metric: ``ios`` (intersection over the smaller box) or ``iou``.
        match_threshold: how much two boxes must match to be one object.
        edge_tolerance: how close to an inner tile side, as a fraction of the tile, a box counts as cut.
        skip_empty: skip tiles whose valid pixels hold one value (nodata-only tiles are always skipped).
        stats_size: side of the decimated read the stretch is computed from.
        quicklook_size: longest side of the quicklook PNG.
    """

    task: str
    query: str | None = None
    classes: tuple[str, ...] | None = None
    tile: int = 512
    overlap: float = 0.2
    bands: tuple[int, ...] | None = None
    batch_size: int = 16
    max_new_tokens: int = 64
    merge: str = "nmm"
    match_metric: str = "ios"
    match_threshold: float = 0.5
    edge_tolerance: float = 0.01
    skip_empty: bool = True
    stats_size: int = STATS_SIZE
    quicklook_size: int = 1024

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ScanError(f"unknown task {self.task!r}; valid tasks: {', '.join(f'{k} ({t.description})' for k, t in TASKS.items())}")
        spec = TASKS[self.task]
        if spec.needs_query and not (self.query and self.query.strip()):
            raise ScanError(f"task {self.task!r} needs --query, e.g. --query 'storage tank'")
        if not spec.needs_query and self.query is not None:
            raise ScanError(f"--query is only for task 'vg', not {self.task!r}")
        if self.classes is not None:
            object.__setattr__(self, "classes", tuple(c.strip() for c in self.classes if c.strip()))
        if spec.needs_classes and (not self.classes or len(self.classes) < 2):
            raise ScanError(f"task {self.task!r} needs --classes with at least two names, e.g. --classes forest,farmland,harbor")
        if not spec.needs_classes and self.classes is not None:
            raise ScanError(f"--classes is only for task 'cls', not {self.task!r}")
        if self.classes is not None and len(set(self.classes)) != len(self.classes):
            raise ScanError(f"--classes names a class twice: {list(self.classes)}")
        if self.bands is not None:
            object.__setattr__(self, "bands", tuple(int(b) for b in self.bands))
        checks = [
            (self.tile >= 16, f"--tile must be at least 16 px, got {self.tile}"),
            (0.0 <= self.overlap < 1.0, f"--overlap must be a fraction in [0, 1), got {self.overlap}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.max_new_tokens >= 1, f"--max-new-tokens must be at least 1, got {self.max_new_tokens}"),
            (self.merge in MERGE_METHODS, f"--merge must be one of {', '.join(MERGE_METHODS)}, got {self.merge!r}"),
            (self.match_metric in MATCH_METRICS, f"--match-metric must be one of {', '.join(MATCH_METRICS)}, got {self.match_metric!r}"),
            (0.0 < self.match_threshold <= 1.0, f"--match-threshold must be in (0, 1], got {self.match_threshold}"),
            (0.0 <= self.edge_tolerance < 0.5, f"edge_tolerance must be in [0, 0.5), got {self.edge_tolerance}"),
            (self.stats_size >= 16, f"stats_size must be at least 16, got {self.stats_size}"),
            (self.quicklook_size >= 64, f"quicklook_size must be at least 64, got {self.quicklook_size}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ScanError(message)

    @property
    def prompt(self) -> str:
        return TASKS[self.task].prompt(self)


@dataclass(frozen=True)
class ScanResult:
    """What a scan wrote.

    Attributes:
        out: the output folder.
        outputs: output name -> path.
        tiles: ``total``, ``done``, ``skipped_nodata``, ``skipped_empty``, ``run_now`` (this call).
        results: task counts (objects, merged duplicates, tiles per class ...).
        georeferenced: False when the outputs have no CRS (see the manifest's ``coordinates``).
        manifest: the manifest as written.
    """

    out: Path
    outputs: dict[str, Path]
    tiles: dict[str, int]
    results: dict[str, Any]
    georeferenced: bool
    manifest: dict[str, Any] = field(repr=False)


class _SingleProcess:
    process_index = 0
    num_processes = 1
    is_main_process = True

    def wait_for_everyone(self) -> None:
        pass


def scan(
    vlm: Generator,
    raster: str | Path,
    *,
    task: str,
    out: str | Path,
    query: str | None = None,
    classes: Sequence[str] | None = None,
    overwrite: bool = False,
    progress: bool = False,
    state: ProcessState | None = None,
    model_fingerprint: Mapping[str, Any] | None = None,
    **settings: Any,
) -> ScanResult | None:
    """Scan a whole raster with a model and write georeferenced outputs to ``out``.

    Args:
        vlm: the model (``aerith.load_vlm(...)``, or anything with its ``generate``).
        raster: any raster GDAL reads; a GeoTIFF for map outputs.
        task: ``vg`` (boxes of ``query``), ``cls`` (a class per tile from ``classes``) or ``cap``.
        out: output folder: new, empty, or an earlier scan of the same raster and settings (resumed).
        overwrite: discard an earlier scan with other settings in ``out``.
        progress: show a progress bar with tiles/s and time left on stderr.
        state: the process's place in a distributed run; None for one process.
        model_fingerprint: what identifies the weights (``aerith.eval.fingerprint.model_fingerprint``);
            a scan in ``out`` made with another is refused. Default:
            :func:`aerith.eval.fingerprint.loaded_model_fingerprint`.
        **settings: the other fields of :class:`ScanConfig` (``tile``, ``overlap``, ``bands``, ``batch_size`` ...).

    Returns:
        the result on the main process, None on the others.

    Raises:
        ScanError: bad settings, a raster that cannot be read or does not fit them, or a foreign ``out``.
    """
    config = ScanConfig(task=task, query=query, classes=tuple(classes) if classes is not None else None, **settings)
    return run_scan(
        vlm, raster, config, out, overwrite=overwrite, progress=progress, state=state, model_fingerprint=model_fingerprint
    )


def check_inputs(raster: str | Path, config: ScanConfig, out: str | Path | None = None) -> None:
    """Open the raster, fit the settings to it and check ``out``, without a model (the CLI calls this before loading one).

    The raster's last pixel is read: its block usually ends the file, so a truncated file fails here.
    """
    with gdal_env(), RasterSource.open(raster, config.bands) as src:
        _grid(src, config)
        src.read_last_pixel()
    if out is not None:
        check_out_writable(Path(out))


def check_out_writable(out: Path) -> None:
    """Refuse an ``out`` that holds something other than a scan, or where no file can be written."""
    import tempfile

    _check_out(out)
    folder = out
    while not folder.exists():  # the nearest existing folder: where out would be made
        folder = folder.parent
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".aerith-write-check-"):
            pass
    except OSError as err:
        raise ScanError(f"--out {out}: cannot write there ({err.strerror or err})") from err


def _grid(src: RasterSource, config: ScanConfig) -> TileGrid:
    try:
        return TileGrid(src.width, src.height, config.tile, config.overlap)
    except ValueError as err:
        raise ScanError(f"{src.path}: {err}") from err


def _model_name(vlm: Any) -> str:
    return str(getattr(vlm, "name", type(vlm).__name__))


def _check_out(out: Path) -> bool:
    """Refuse a folder that holds something other than a scan; True when it holds an earlier scan."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ScanError(f"--out {out} is a file, not a folder")
    entries = [p for p in out.iterdir() if not p.name.startswith(".")]
    if not entries:
        return False
    ours = {JOURNAL_DIR, MANIFEST} | {n for names in OUTPUT_NAMES.values() for n in names}
    foreign = sorted(p.name for p in entries if p.name not in ours)
    if foreign or not ((out / JOURNAL_DIR).is_dir() or (out / MANIFEST).is_file()):
        raise ScanError(f"--out {out} is not empty and holds no scan (found {foreign[:5]}); choose a new or empty folder")
    return True


def _clear_out(out: Path) -> None:
    """Remove an earlier scan's journal and outputs (only names a scan writes)."""
    import shutil

    shutil.rmtree(out / JOURNAL_DIR, ignore_errors=True)
    for name in {MANIFEST} | {n for names in OUTPUT_NAMES.values() for n in names}:
        (out / name).unlink(missing_ok=True)


def run_scan(
    vlm: Generator,
    raster: str | Path,
    config: ScanConfig,
    out: str | Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
    state: ProcessState | None = None,
    model_fingerprint: Mapping[str, Any] | None = None,
) -> ScanResult | None:
    """:func:`scan` with a ready :class:`ScanConfig`."""
    state = state or _SingleProcess()
    rank, world = int(state.process_index), int(state.num_processes)
    out = Path(out)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    with gdal_env(), RasterSource.open(raster, config.bands) as src:
        grid = _grid(src, config)
        if not src.georeferenced and state.is_main_process:
            lacking = "a geotransform but no CRS" if not src.transform.is_identity else "no georeference (no CRS or no geotransform)"
            warnings.warn(
                f"{src.path} has {lacking}: the outputs are in {src.coordinates} "
                "(RFC 7946 GeoJSON is WGS84 longitude/latitude only)",
                NotGeoreferencedWarning,
                stacklevel=2,
            )
        fingerprint = {
            "raster_sha256": sha256_file(src.path),
            "model": _model_name(vlm),
            "model_fingerprint": dict(model_fingerprint) if model_fingerprint is not None else loaded_model_fingerprint(vlm),
            "task": config.task,
            "prompt": config.prompt,
            "tile": config.tile,
            "overlap": config.overlap,
            "bands_asked": list(config.bands) if config.bands is not None else "default",  # default may mean the palette
            "bands": list(src.bands),
            "max_new_tokens": config.max_new_tokens,
            "skip_empty": config.skip_empty,
            "stats_size": config.stats_size,
        }
        journal = Journal(out, fingerprint, tiles=len(grid))
        # every process checks (so that all raise alike, none is left waiting); only the main one changes files
        earlier = _check_out(out)
        state.wait_for_everyone()
        if state.is_main_process:
            if earlier and overwrite:
                _clear_out(out)
            try:
                out.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ScanError(f"--out {out}: cannot write there ({err.strerror or err})") from err
        state.wait_for_everyone()
        done, _ = journal.read()
        state.wait_for_everyone()  # every process knows what is done before any appends
        todo = [i for i in range(len(grid)) if i not in done][rank::world]
        stretch = src.stretch(config.stats_size)
        tic = time.perf_counter()
        with journal.open_part(rank, world) as writer:
            writer.write([{"run": {"started": started, "process": rank, "processes": world,
                                   "first_tile": todo[0] if todo else None, "tiles": len(todo)}}])
            _run_tiles(vlm, src, grid, config, stretch, todo, writer, progress and state.is_main_process)
        seconds = time.perf_counter() - tic
        state.wait_for_everyone()
        if not state.is_main_process:
            return None
        records, runs = journal.read()
        missing = [i for i in range(len(grid)) if i not in records]
        if missing:
            raise RuntimeError(f"{len(missing)} tile(s) have no journal record after the scan (first: {missing[0]})")
        from aerith.geo.results import write_results

        return write_results(
            vlm, src, grid, config, stretch, records, out, fingerprint,
            runs=[r["run"] for r in runs],
            last_run={"tiles": len(grid) - len(done), "processes": world, "seconds": round(seconds, 3)},
        )


def _progress(enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]scan"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]} tiles/s"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def _run_tiles(vlm, src, grid, config, stretch, todo, writer, show_progress: bool) -> None:
    """Read, batch and answer the ``todo`` tiles, appending each batch to the journal."""
    from PIL import Image

    prompt = config.prompt
    pending: list[dict[str, Any]] = []
    batch: list[tuple[int, Any]] = []
    tic = time.perf_counter()
    with _progress(show_progress) as bar:
        task = bar.add_task("scan", total=len(todo), rate="-")

        def flush(run_model: bool = True) -> None:
            if run_model and batch:
                images = [img for _, img in batch]
                answers = vlm.generate(images, [prompt] * len(images), batch_size=config.batch_size, max_new_tokens=config.max_new_tokens)
                if isinstance(answers, str):
                    answers = [answers]
                if len(answers) != len(images):
                    raise RuntimeError(f"the model gave {len(answers)} answers for {len(images)} tiles")
                pending.extend({"tile": i, "status": "done", "answer": str(a)} for (i, _), a in zip(batch, answers))
                batch.clear()
            if pending:
                writer.write(sorted(pending, key=lambda r: r["tile"]))
                bar.advance(task, len(pending))
                rate = bar.tasks[0].completed / max(time.perf_counter() - tic, 1e-9)
                bar.update(task, rate=f"{rate:.2f}")
                pending.clear()

        for i in todo:
            t = grid[i]
            rgb, status = src.read_tile(t.x, t.y, t.size, stretch, skip_empty=config.skip_empty, name=f"tile {i}")
            if rgb is None:
                pending.append({"tile": i, "status": status})
                if len(pending) >= 256:  # a long run of skipped tiles: record them, keep the bar moving
                    flush(run_model=False)
            else:
                batch.append((i, Image.fromarray(rgb, "RGB")))
            if len(batch) >= config.batch_size:
                flush()
        flush()


def config_dict(config: ScanConfig) -> dict[str, Any]:
    d = asdict(config)
    for k in ("classes", "bands"):
        if d[k] is not None:
            d[k] = list(d[k])
    return d
