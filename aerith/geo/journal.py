"""The scan journal: every finished tile's answer, so an interrupted scan resumes where it stopped.

``OUT/journal/part-RANK-of-N.jsonl`` holds one JSON line per tile (``tile``,
``status``: ``done``, ``nodata`` or ``empty``, and the model's ``answer``),
appended and flushed to disk after each batch, after a header line with the
scan's fingerprint (raster checksum, model, task and every setting that
changes an answer). Each process of a distributed scan writes its own part;
a resumed scan reads all parts, whatever the number of processes that wrote
them. A last line cut short by a crash is ignored (that tile is simply run
again). The outputs are made from the journal alone, so a resumed scan ends
with the same outputs as one that ran through.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

from aerith.eval.fingerprint import describe
from aerith.geo.errors import ScanError

JOURNAL_DIR = "journal"
_PART = re.compile(r"^part-(\d+)-of-(\d+)\.jsonl$")
FORMAT = 1
STATUSES = ("done", "nodata", "empty")


def part_name(rank: int, world: int) -> str:
    return f"part-{rank:03d}-of-{world:03d}.jsonl"


_LABELS = {"model_fingerprint": "model files", "bands_asked": "--bands"}


def _damaged(part: Path, n: int, what: str) -> ScanError:
    fix = "delete that line (its tile is scanned again) or " if n > 1 else ""
    return ScanError(f"{part}: line {n} {what}; the journal is damaged: {fix}pass --overwrite to start over")


def _describe_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    differ = [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
    return "; ".join(
        f"{_LABELS.get(k, k)} is {describe(old.get(k))} there, {describe(new.get(k))} here" for k in differ
    ) or "they differ"


class Journal:
    """The journal folder of one scan.

    Args:
        out: the scan's output folder.
        fingerprint: what must match for a journal to be resumed.
        tiles: how many tiles the scan has (a record of another tile number is damage); None: not checked.
    """

    def __init__(self, out: Path, fingerprint: Mapping[str, Any], tiles: int | None = None) -> None:
        self.out = Path(out)
        self.folder = self.out / JOURNAL_DIR
        self.fingerprint = dict(fingerprint)
        self.tiles = tiles

    def parts(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.iterdir() if _PART.match(p.name))

    def read(self) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
        """Every finished tile's record by tile number, and the run lines, from all parts.

        Raises:
            ScanError: a part was written by a scan with another fingerprint, or a line other than
                the last is not a valid record (named by part, line and field).
        """
        records: dict[int, dict[str, Any]] = {}
        runs: list[dict[str, Any]] = []
        for part in self.parts():
            data = part.read_bytes()
            data = data[: data.rfind(b"\n") + 1]  # text after the last newline is a line cut short
            try:
                complete = data.decode("utf-8").split("\n")[:-1]
            except UnicodeDecodeError as err:
                n = data[: err.start].count(b"\n") + 1
                raise _damaged(part, n, "is not UTF-8 text") from err
            if not complete:
                continue
            for n, line in enumerate(complete, start=1):
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError as err:
                    raise _damaged(part, n, f"is not valid JSON ({err})") from err
                if not isinstance(entry, dict):
                    raise _damaged(part, n, "is not a JSON object")
                if n == 1:
                    if entry.get("format") != FORMAT or "fingerprint" not in entry:
                        raise ScanError(f"{part}: line 1 is not a scan journal header")
                    if entry["fingerprint"] != self.fingerprint:
                        raise ScanError(
                            f"{self.out} holds a scan with other settings ({_describe_difference(entry['fingerprint'], self.fingerprint)}); "
                            "choose another --out, or pass --overwrite to discard it"
                        )
                elif "run" in entry:
                    runs.append(entry)
                else:
                    problem = self._record_problem(entry)
                    if problem:
                        raise _damaged(part, n, problem)
                    records.setdefault(entry["tile"], entry)
        return records, runs

    def check_model(self, model_fingerprint: Mapping[str, Any]) -> None:
        """Refuse a journal of another model before that model loads (the rest is compared by :meth:`read`).

        Raises:
            ScanError: a part's header records another model fingerprint.
        """
        for part in self.parts():
            with open(part, "rb") as f:
                first = f.readline()
            try:
                recorded = json.loads(first)["fingerprint"]["model_fingerprint"]
            except (ValueError, KeyError, TypeError):
                continue  # a damaged or old header: read() names it
            if recorded != dict(model_fingerprint):
                old, new = {"model_fingerprint": recorded}, {"model_fingerprint": dict(model_fingerprint)}
                raise ScanError(
                    f"{self.out} holds a scan with other settings ({_describe_difference(old, new)}); "
                    "choose another --out, or pass --overwrite to discard it"
                )

    def _record_problem(self, entry: Mapping[str, Any]) -> str | None:
        """What is wrong with a tile record, or None."""
        for key in ("tile", "status"):
            if key not in entry:
                return f"has no {key!r} field"
        tile, status = entry["tile"], entry["status"]
        if not isinstance(tile, int) or isinstance(tile, bool) or tile < 0 or (self.tiles is not None and tile >= self.tiles):
            return f"has field 'tile' {tile!r}, not a tile number" + (f" (0-{self.tiles - 1})" if self.tiles else "")
        if status not in STATUSES:
            return f"has field 'status' {status!r}, not one of {', '.join(STATUSES)}"
        if status == "done" and not isinstance(entry.get("answer"), str):
            return "is a done tile with no 'answer' text"
        return None

    def open_part(self, rank: int, world: int) -> JournalWriter:
        """Append to this process's part, writing its header first if it is new."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / part_name(rank, world)
        if path.exists():
            _drop_cut_line(path)
        new = not path.exists() or path.stat().st_size == 0
        writer = JournalWriter(open(path, "a", encoding="utf-8"))
        if new:
            writer.write([{"format": FORMAT, "fingerprint": self.fingerprint}])
        return writer


def _drop_cut_line(path: Path) -> None:
    """Truncate a line cut short by a crash, so that appended lines start on their own."""
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end != len(data):
        with open(path, "r+b") as f:
            f.truncate(end)


class JournalWriter:
    """Appends lines and puts them on disk before returning."""

    def __init__(self, f: TextIO) -> None:
        self._f = f

    def write(self, entries: Iterable[Mapping[str, Any]]) -> None:
        self._f.write("".join(json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries))
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
