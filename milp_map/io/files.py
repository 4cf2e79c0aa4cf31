"""The one writer of output files: atomic (a temporary file, then a rename, so a reader never
sees half a file) and with the mode an ordinary file gets under the process umask."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path

from milp_map.errors import MilpMapError


def _default_file_mode() -> int:
    """The mode open() gives a new file under the process umask (0644 under 022); read once
    at import, since reading the umask means setting it, which is not thread-safe."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


FILE_MODE = _default_file_mode()


def check_out_path(path: str | Path) -> Path:
    """The output path, or a clear error if it cannot be written (checked before solving)."""
    path = Path(path)
    if path.is_dir():
        raise MilpMapError(f"{path}: is a directory; --out takes the path of a file to write")
    if not path.parent.is_dir():
        raise MilpMapError(f"{path}: folder {path.parent} does not exist")
    if path.exists() and not path.is_file():
        # a rename over a device, FIFO or socket would replace it (as root: /dev/full)
        raise MilpMapError(f"{path}: is not a regular file; --out takes a file to (over)write")
    return path


class WriteError(OSError):
    """An output file that could not be written (full disk, read-only or special folder):
    one line naming the file asked for, not its temporary twin; the CLI exits 1."""

    def __str__(self) -> str:
        hint = ""
        if self.errno == errno.ENOSPC:
            hint = "; free some space or write elsewhere"
        elif self.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
            hint = "; choose a folder you can write to"
        return f"{self.filename}: cannot write it ({self.strerror}){hint}"


def write_bytes_atomic(data: bytes, path: str | Path, *, durable: bool = False) -> Path:
    """Write `data` to `path` via a temporary file in the same folder and a rename;
    `durable` also syncs it to disk first (a sweep's table survives a power cut). Any OS
    error is a WriteError; the temporary file never stays behind."""
    path = check_out_path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, FILE_MODE)  # mkstemp makes 0600; an output file is meant to be shared
        os.replace(tmp, path)
    except OSError as exc:
        _remove(tmp)
        raise WriteError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        _remove(tmp)
        raise
    return path


def _remove(tmp: str | None) -> None:
    """Delete a temporary file if it was made (a failure to delete it is not the news)."""
    if tmp is not None:
        with contextlib.suppress(OSError):
            Path(tmp).unlink(missing_ok=True)


def write_text_atomic(text: str, path: str | Path, *, durable: bool = False) -> Path:
    """`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(text.encode(), path, durable=durable)


def write_json_atomic(data: dict, path: str | Path) -> Path:
    """JSON (indented, one trailing newline), written atomically."""
    return write_text_atomic(json.dumps(data, indent=2, sort_keys=False) + "\n", path)
