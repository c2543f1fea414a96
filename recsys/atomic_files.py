"""Files written whole or not at all: a reader (or a crash, or a full disk) sees the old file or the
new one, never a part. Every file recsys writes for a user goes through here."""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _file_mode(path))  # mkstemp's 0600 would hide results from a serving user
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)


def process_umask() -> int:
    umask = os.umask(0o022)  # read it (no call reads it without setting it), then restore
    os.umask(umask)
    return umask


def _file_mode(path: Path) -> int:
    """The mode `open()` would give a new file (0666 less the umask), or the replaced file's."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~process_umask()


def write_json(path: Path, obj: dict) -> None:
    """Sorted, indented JSON, written atomically (run reports, segment and audience summaries)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(path, text.encode())
