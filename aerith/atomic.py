"""Writing files and folders so that a crash never leaves a half-written one behind, nor none at all.

A folder is written into a temporary sibling (``.NAME.tmp-PID-XXXX``) and put in place in one step:
on Linux the new and the old folder are swapped with ``renameat2(RENAME_EXCHANGE)``, so ``NAME``
exists at every instant; elsewhere two renames are used, and a crash between them leaves the old
folder as ``.NAME.old-PID``, which the next :func:`atomic_dir` on that path (or :func:`recover`)
puts back. Leftovers of writers that died (their PID no longer runs) are removed then too.

What may be replaced is checked first: never a file, never a folder that is not empty unless the
caller's ``replaceable`` test accepts it (e.g. "holds a saved model"), so a wrong path cannot
delete a user's data.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _leftovers(path: Path, kind: str) -> list[tuple[Path, int]]:
    """``(leftover, pid)`` for ``.NAME.tmp-PID-*`` or ``.NAME.old-PID`` siblings of ``path``."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.{kind}-(\d+)(?:-.*)?$")
    if not path.parent.is_dir():
        return []
    found = []
    for entry in path.parent.iterdir():
        m = pattern.match(entry.name)
        if m:
            found.append((entry, int(m.group(1))))
    return found


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def recover(path: str | Path) -> None:
    """Finish what a writer of ``path`` that died left: restore a moved-away ``path``, drop its temp folders.

    Only leftovers of processes that no longer run are touched.
    """
    path = Path(path)
    olds = [(p, pid) for p, pid in _leftovers(path, "old") if not _pid_alive(pid)]
    if not path.exists() and olds:
        newest = max(olds, key=lambda item: item[0].stat().st_mtime)[0]
        os.replace(newest, path)
        olds = [(p, pid) for p, pid in olds if p != newest]
    for leftover, _ in olds:
        _remove(leftover)
    for leftover, pid in _leftovers(path, "tmp"):
        if not _pid_alive(pid):
            _remove(leftover)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False  # old kernel or a filesystem without exchange: fall back to two renames
    raise OSError(err, f"swapping {a} and {b}: {os.strerror(err)}")


def _put_in_place(tmp: Path, path: Path) -> None:
    if not path.exists():
        os.replace(tmp, path)
        return
    if _exchange(tmp, path):
        _remove(tmp)  # now holds the old content
        return
    old = path.with_name(f".{path.name}.old-{os.getpid()}")
    os.replace(path, old)
    try:
        os.replace(tmp, path)  # a crash before this line leaves `old`, which recover() puts back
    except BaseException:
        os.replace(old, path)
        raise
    _remove(old)


def file_in_the_way(path: str | Path) -> Path | None:
    """The nearest existing folder above ``path`` when it is a file (nothing can be written under it), else ``None``.

    Checked before writing so that the error names that file: ``mkdir`` only says ``[Errno 17] File exists``.
    """
    above = next((p for p in Path(path).expanduser().absolute().parents if p.exists()), None)
    return above if above is not None and not above.is_dir() else None


def check_replaceable(path: Path, overwrite: bool, replaceable: Callable[[Path], bool] | None, what: str) -> None:
    """Refuse to replace ``path`` unless it is absent, an empty folder, or accepted by ``replaceable``."""
    if not path.exists() and not path.is_symlink():
        return
    if not path.is_dir() or path.is_symlink():
        raise FileExistsError(f"{path} exists and is not a folder; refusing to replace it with {what}")
    if not any(path.iterdir()):
        return
    if not overwrite:
        raise FileExistsError(f"{path} exists and is not empty; refusing to overwrite it with {what}")
    if replaceable is not None and not replaceable(path):
        raise FileExistsError(
            f"{path} is a folder that does not hold {what}; refusing to replace it (and delete its contents): "
            "choose another path or empty it first"
        )


@contextlib.contextmanager
def atomic_dir(
    path: str | Path,
    overwrite: bool = True,
    replaceable: Callable[[Path], bool] | None = None,
    what: str = "the new folder",
) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` in one step.

    Args:
        path: the folder to write.
        overwrite: allow replacing an existing non-empty folder (subject to ``replaceable``).
        replaceable: test an existing non-empty folder must pass to be replaced (e.g. it holds a
            saved model); ``None`` accepts any folder.
        what: what is written, for error messages.
    Raises:
        FileExistsError: ``path`` is a file, or a folder that may not be replaced.

    On an exception, or when the final swap fails, the temporary folder is removed and ``path`` is
    left as it was.
    """
    path = Path(os.path.abspath(Path(path).expanduser()))  # '.' has itself as parent: the temp folder would be inside
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    check_replaceable(path, overwrite, replaceable, what)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's folder is owner-only; the result should be like mkdir's
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        _put_in_place(tmp, path)
    except BaseException:
        if tmp.exists():  # the swap did not happen: tmp still holds the new content, path the old
            shutil.rmtree(tmp, ignore_errors=True)
        raise


def _umask() -> int:
    """The process umask, read without changing it where /proc says it (os.umask would, for all threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file gets the permissions a plain ``open(path, "w")`` would (mkstemp's are owner-only).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; refusing to replace it with a file")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


__all__ = ["atomic_dir", "atomic_write_bytes", "atomic_write_text", "check_replaceable", "recover"]
