"""Files written whole or not at all: a reader (or a crash, or a full disk) sees the old file or the
new one, never a part. Every file recsys writes for a user goes through here."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` all at once: readers see the old file or the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
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


def write_json(path: Path, obj: dict) -> None:
    """Sorted, indented JSON, written atomically (run reports, segment and audience summaries)."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    write_atomic(path, text.encode())
