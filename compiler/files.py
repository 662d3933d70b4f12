"""Writing output files and folders safely: a temporary beside the target, then an atomic
rename (a swap, for a folder)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` for a temporary file in the target's folder, then rename it into place;
    on any failure the target is untouched and the temporary removed."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0o600 is for the temporary, not the result
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` for a temporary folder beside `path`, then swap it in for `path` (a
    folder such as a SavedModel); on any failure `path` is untouched and the temporary removed.

    Where Linux's renameat2 is there the swap is one atomic exchange; elsewhere the old folder
    is renamed aside first, so a crash between the two renames leaves it as `.NAME.old.*`.
    """
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent))
    old: Path | None = None
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp's 0o700 is for the temporary, not the result
        write(tmp)
        if not path.exists() and not path.is_symlink():
            os.rename(tmp, path)
            return
        if path.is_dir() and not path.is_symlink() and _exchange(tmp, path):
            old = tmp  # the previous folder now sits at the temporary's name
            return
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=parent))
        os.rename(path, old / "previous")
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old / "previous", path)  # put the previous output back
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None and (leftover.exists() or leftover.is_symlink()):
                _remove(leftover)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with renameat2(RENAME_EXCHANGE); False where unavailable."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return done == 0  # EINVAL (a file system without it), ENOSYS: fall back to two renames


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
