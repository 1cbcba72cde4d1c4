"""The scan pass of text inputs, begun early: `pi-match build` starts it for its inputs on a
thread of its own before it loads numpy and pyarrow, which keep one core busy for about a
tenth of a second while the other has nothing to do. The pass (`_core.scan_text_file`) is one
Rust call a file that holds no GIL. `io.encoding.scan` takes its facts when the file it has
open is the one scanned (device, inode, size and modification time) and was read in blocks of
the same size, and scans itself otherwise: a prescan saves time, it never changes an answer.
This module imports nothing heavy (it runs before numpy and pyarrow are loaded)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Sequence

from . import _core

#: The scan's block size (`io.encoding.scan`'s default).
CHUNK = 16 << 20

#: (bytes, newlines, x80, utf8_bad_at, encoding tally or None): `_core.scan_text_file`.
Facts = tuple[int, int, bool, "int | None", "tuple[int, int, list[int], list[int], int] | None"]

#: The first bytes of inputs that are not text (a zip: .xlsx; Parquet): not scanned.
NOT_TEXT = (b"PK\x03\x04", b"PAR1")


class _Scan:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.identity: tuple[int, int, int, int] | None = None
        self.chunk = 0
        self.facts: Facts | None = None


_lock = threading.Lock()
_scans: dict[str, _Scan] = {}


def identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def scan_fd(fd: int, chunk: int, check_utf8: bool, mixed_if_not_utf8: bool) -> Facts:
    """The scan's facts of open file `fd`, from its first byte (its offset left alone)."""
    return _core.scan_text_file(
        fd, chunk, check_utf8=check_utf8, mixed_if_not_utf8=mixed_if_not_utf8
    )


def _scan_one(path: str, scan: _Scan, chunk: int) -> None:
    try:
        # Regular files only, and opened without blocking in case one was swapped for a pipe
        # since: opening a pipe or device can block, or disturb whoever holds its other end.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and os.pread(fd, 4, 0) not in NOT_TEXT:
                # As a file left to detection is scanned: UTF-8 checked, and the lines of
                # one whose first block is not UTF-8 tallied by encoding.
                scan.facts = scan_fd(fd, chunk, True, True)
                scan.identity, scan.chunk = identity(st), chunk
        finally:
            os.close(fd)
    except BaseException:  # noqa: BLE001 (whatever went wrong, its own scan will say it)
        pass
    finally:
        scan.done.set()


def start(paths: Sequence[str], chunk: int = CHUNK) -> threading.Thread:
    """Scan the regular files among `paths`, in turn, on a thread of its own."""
    todo = []
    with _lock:
        for p in paths:
            key = os.path.abspath(p)
            if key not in _scans:
                _scans[key] = _Scan()
                todo.append(key)

    scans = [_scans[key] for key in todo]

    def run() -> None:
        try:
            for key, scan in zip(todo, scans, strict=True):
                _scan_one(key, scan, chunk)
        finally:
            for scan in scans:
                scan.done.set()  # never leave a `take` waiting

    t = threading.Thread(target=run, name="pi_match prescan", daemon=True)
    t.start()
    return t


def take(path: str, st: os.stat_result, chunk: int) -> Facts | None:
    """The prescan's facts of `path` (waiting for them while its scan is under way) if the
    file `st` describes (the caller's open file) is the one scanned, in blocks of `chunk`;
    else None. A prescan is taken once."""
    with _lock:
        scan = _scans.pop(os.path.abspath(path), None)
    if scan is None:
        return None
    scan.done.wait()
    if scan.facts is None or scan.identity != identity(st) or scan.chunk != chunk:
        return None
    return scan.facts
