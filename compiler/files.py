"""Writing output files and folders safely: a temporary beside the target, then an atomic
rename (a swap, for a folder).

Whatever happens, even a kill -9 in the middle, the previous output stays whole. A killed
writer leaves its temporary behind; the next write into the same folder removes it. Each
temporary is named `.NAME.netc-XXXXXXXX.tmp` (a random part; an optional suffix after it for
writers that insist on one) and held under an exclusive `flock` by its writer while it
exists, so a temporary that can be locked is one whose writer is gone: only such are removed,
never a file netc did not make or a write in progress. Written files get the permissions the
umask gives a new file (0644 under the usual 022), not the temporary's 0600.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

# `.model.onnx.netc-3f9a0c1d.tmp`, `.model.keras.netc-3f9a0c1d.tmp.keras`, and the previous
# folder set aside by the two-rename fallback: `.model.savedmodel.netc-3f9a0c1d.old`
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.netc-[0-9a-f]{8}\.(?:tmp(?:\.[A-Za-z0-9]+)?|old)$")


def atomic_write(path: str | Path, write: Callable[[Path], None], *, suffix: str = "") -> None:
    """Call `write(tmp)` for a temporary file in the target's folder (its name ends in
    `suffix`, for writers that check it), then rename it into place; on any failure the
    target is untouched and the temporary removed."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    sweep(parent)
    tmp, lock = _create(parent, path.name, suffix, folder=False)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask())  # the temporary's 0o600 is not the result's
        os.replace(tmp, path)
    finally:
        _remove(tmp)
        os.close(lock)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    atomic_write(path, write)


def atomic_write_dir(path: str | Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` for a temporary folder beside `path`, then swap it in for `path` (a
    folder such as a SavedModel); on any failure `path` is untouched and the temporary removed.

    Where Linux's renameat2 is there the swap is one atomic exchange; elsewhere the old folder
    is renamed aside first, and a crash between the two renames leaves it as `.NAME.netc-*.old`
    (the next write puts it back if `path` is missing)."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    sweep(parent)
    tmp, lock = _create(parent, path.name, "", folder=True)
    locks = [lock]
    old: Path | None = None
    try:
        os.chmod(tmp, 0o777 & ~umask())  # the temporary's 0o700 is not the result's
        write(tmp)
        if not path.exists() and not path.is_symlink():
            os.rename(tmp, path)
            return
        if path.is_dir() and not path.is_symlink() and _exchange(tmp, path):
            return  # the previous folder now sits at the temporary's name, removed below
        old, old_lock = _create(parent, path.name, "", folder=True, kind="old")
        locks.append(old_lock)
        os.rename(path, old / "previous")
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(old / "previous", path)  # put the previous output back
            raise
    finally:
        for leftover in (tmp, old):
            if leftover is not None:
                _remove(leftover)
        for fd in locks:
            os.close(fd)


def sweep(folder: str | Path) -> list[Path]:
    """Remove the temporaries that killed netc processes left in `folder` (those no live
    writer holds); a set-aside previous folder whose target is gone is put back. Returns
    what was removed."""
    import fcntl

    removed: list[Path] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for entry in names:
        m = _TEMPORARY.match(entry)
        if m is None:
            continue
        leftover = Path(folder) / entry
        try:
            fd = os.open(leftover, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            continue  # gone already, a symlink (not netc's), or unreadable
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue  # its writer is still at work
        try:
            target = Path(folder) / m.group("name")
            previous = leftover / "previous"
            if entry.endswith(".old") and previous.is_dir() and not target.exists():
                os.rename(previous, target)
            _remove(leftover)
            removed.append(leftover)
        finally:
            os.close(fd)
    return removed


def _create(
    parent: Path, name: str, suffix: str, *, folder: bool, kind: str = "tmp"
) -> tuple[Path, int]:
    """A new temporary beside `name` and an open descriptor holding its lock."""
    import fcntl

    while True:
        tmp = parent / f".{name}.netc-{secrets.token_hex(4)}.{kind}{suffix}"
        try:
            if folder:
                os.mkdir(tmp, 0o700)
                fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            else:
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # another netc's sweep may have taken it before the lock: then make another
            if os.stat(tmp, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return tmp, fd
        except FileNotFoundError:
            pass
        os.close(fd)


def umask() -> int:
    """The process's umask, read without changing it where Linux shows it."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (briefly process-wide)
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
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as e:  # a read-only folder: nothing more to do about it
        if e.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
