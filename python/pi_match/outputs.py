"""Writing files beside evidence. Every command checks its output paths before it reads a
byte: no output may be one of its inputs, its key file or another of its outputs (compared by
device and inode, so a hard link, a symlink or `./x` for `x` is caught), nor anything but a
regular file (`-o /dev/null` as root would replace the device node). Outputs are written to a
temporary name beside the target, unique per process, thread and call, flushed and synced,
then renamed: an interrupted run leaves the old file or none, never a torn one. Files that
hold raw values are created 0600 whatever the umask.

>>> import pathlib, tempfile
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> (d / "seized.csv").write_text("id\\n")
3
>>> check_outputs({"input": [d / "seized.csv"]}, {"artefact": d / "seized.csv"})
Traceback (most recent call last):
...
pi_match.outputs.OutputError: refusing to write the artefact ... it is the input ...
"""

from __future__ import annotations

import contextlib
import math
import os
import stat
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from ._core import PiMatchError

PathLike = str | os.PathLike[str]

#: Permission bits of files that hold raw values from the data (rejects, probe hits).
RAW_VALUES_MODE = 0o600
#: Permission bits of other outputs (artefacts, manifests, reports, figures).
OUTPUT_MODE = 0o644


def shown(text: str) -> str:
    """`text` as a UTF-8 file can hold it. A file name whose bytes are not UTF-8 (a GBK name on
    a seized disk mounted as it came) reaches Python with surrogate escapes, which no UTF-8
    file, JSON or terminal takes; its undecodable bytes are shown as `\\xNN`, as raw values
    are (`bytes.decode("utf-8", "backslashreplace")`), so the name stays unambiguous.

    >>> shown("案件.csv"), shown(b"\\xb0\\xb8.csv".decode("utf-8", "surrogateescape"))
    ('案件.csv', '\\\\xb0\\\\xb8.csv')
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:  # (a surrogate no byte escape made)
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")


def text_safe(obj: Any, *, finite: bool = False) -> Any:
    """`obj` (a summary or manifest: dicts, lists, strings, numbers) with every string `shown`;
    with `finite`, infinities and NaN (a saturated index's estimate) as None too (standard
    JSON has neither)."""
    if isinstance(obj, str):
        return shown(obj)
    if finite and isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {
            shown(k) if isinstance(k, str) else k: text_safe(v, finite=finite)
            for k, v in obj.items()
        }
    if isinstance(obj, list | tuple):
        return [text_safe(v, finite=finite) for v in obj]
    return obj


class OutputError(PiMatchError):
    """An output path that would destroy evidence or is not a regular file."""


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def require_regular(path: PathLike, what: str) -> os.stat_result:
    """The stat of `path` if it is a regular file (links followed); otherwise a one-line
    error, before anything opens it (opening a FIFO would block for ever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise OutputError(f"{what} {os.fspath(path)}: no such file") from None
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(
            f"{what} {os.fspath(path)}: is {_kind_of(st.st_mode)}, not a regular file; "
            "pi_match reads and writes regular files only"
        )
    return st


def file_identity(path: PathLike) -> tuple[int, int] | None:
    """The (device, inode) of the file at `path` (links followed), or None if there is none:
    two names of one file have one identity."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def check_outputs(
    inputs: Mapping[str, Sequence[PathLike | None]],
    outputs: Mapping[str, PathLike | None],
    *,
    folders_made: bool = False,
) -> None:
    """Refuse (OutputError, nothing touched) an output that is an input, a key or another
    output, an existing path that is not a regular file, or one in a folder that does not
    exist (unless the caller makes its folders: `folders_made`). `inputs` maps a role
    ("input", "key file"…) to its paths; `outputs` a role ("artefact", "rejects file"…) to a
    path."""
    held: list[tuple[tuple[int, int] | str, str, str]] = []
    for role, paths in inputs.items():
        for p in paths:
            if p is not None and (found := file_identity(p)) is not None:
                held.append((found, role, os.fspath(p)))
    for role, out in outputs.items():
        if out is None:
            continue
        path = os.fspath(out)
        try:
            st = os.stat(path)
        except OSError:
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise OutputError(
                f"refusing to write the {role} {path}: it is {_kind_of(st.st_mode)}, not a "
                "regular file"
            )
        folder = os.path.dirname(path) or "."
        if st is None and not folders_made and not os.path.isdir(folder):
            what = "is not a folder" if os.path.exists(folder) else "does not exist"
            raise OutputError(
                f"cannot write the {role} {path}: {folder} {what}; make the folder first or "
                "choose another path"
            )
        ident: tuple[int, int] | str = (
            (st.st_dev, st.st_ino) if st is not None else os.path.realpath(path)
        )
        for other, other_role, other_path in held:
            if other == ident:
                why = (
                    "inputs are evidence and are never written"
                    if other_role in inputs
                    else "two outputs cannot share a file"
                )
                raise OutputError(
                    f"refusing to write the {role} {path}: it is the {other_role} "
                    f"{other_path} ({why}); choose another output path"
                )
        held.append((ident, role, path))


def _temp_beside(path: str) -> str:
    d, name = os.path.split(path)
    tag = f"{os.getpid()}-{threading.get_ident()}-{uuid.uuid4().hex[:12]}"
    return os.path.join(d, f".{name}.tmp-{tag}")


@contextlib.contextmanager
def atomic_write(
    path: PathLike, *, mode: int = OUTPUT_MODE, text: bool = False, encoding: str = "utf-8"
) -> Iterator[IO[Any]]:
    """Write `path` through a temporary file that replaces it only once complete and synced.
    An exception inside the block (or a full disk) leaves `path` as it was. OSErrors name
    `path`."""
    path = os.fspath(path)
    st = None
    with contextlib.suppress(OSError):
        st = os.stat(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"refusing to write {path}: it is {_kind_of(st.st_mode)}")
    tmp = _temp_beside(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}", path) from None
    ok = False
    try:
        os.fchmod(fd, mode)  # the umask filtered os.open's mode
        f: IO[Any] = (
            os.fdopen(fd, "w", encoding=encoding, newline="") if text else os.fdopen(fd, "wb")
        )
        with f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        ok = True
    except OSError as e:
        if isinstance(e, OutputError):
            raise
        raise OSError(e.errno, f"writing {path} failed: {e.strerror or e}", path) from None
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def write_bytes(path: PathLike, data: bytes, *, mode: int = OUTPUT_MODE) -> None:
    with atomic_write(path, mode=mode) as f:
        f.write(data)


def write_text(path: PathLike, data: str, *, mode: int = OUTPUT_MODE) -> None:
    with atomic_write(path, mode=mode, text=True) as f:
        f.write(data)


def remove_stale(path: PathLike) -> bool:
    """Remove a regular file left by an earlier run (so it cannot pass for this run's)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        os.unlink(path)
        return True
    return False


@contextlib.contextmanager
def naming(path: PathLike) -> Iterator[None]:
    """Re-raise an OSError without a file name (a full disk on write) as one naming `path`."""
    try:
        yield
    except OSError as e:
        if e.filename is not None:
            raise
        raise OSError(
            e.errno, f"writing {os.fspath(path)} failed: {e.strerror or e}", path
        ) from None


class Staged:
    """An output written in full under a temporary name, renamed into place by `commit` once
    every output of the run is written (so a full disk or an error part way leaves all the old
    files, and a set is never half new)."""

    def __init__(self, path: PathLike, *, mode: int = OUTPUT_MODE):
        self.path = os.fspath(path)
        self.mode = mode
        self.tmp = _temp_beside(self.path)
        self.done = False

    def open_text(self, encoding: str = "utf-8") -> IO[str]:
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, self.mode)
        os.fchmod(fd, self.mode)
        return os.fdopen(fd, "w", encoding=encoding, newline="")

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def commit(staged: Sequence[Staged], remove: Sequence[PathLike] = ()) -> None:
    """Rename every staged file into place, in order (the manifest last), then remove stale
    files of an earlier run. Ctrl-C is held off until the renames are done."""
    import signal

    interrupted: list[bool] = []
    main = threading.current_thread() is threading.main_thread()
    old: Any = None
    if main:
        old = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        for s in staged:
            try:
                os.replace(s.tmp, s.path)
            except OSError as e:
                raise OSError(e.errno, f"cannot write {s.path}: {e.strerror}", s.path) from None
            s.done = True
        for p in remove:
            remove_stale(p)
    finally:
        if main:
            signal.signal(signal.SIGINT, old)
    if interrupted:
        raise KeyboardInterrupt
