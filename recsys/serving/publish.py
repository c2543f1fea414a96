"""Publish an export directory without ever deleting what recsys did not write.

An export is built in a fresh staging folder (`tempfile.mkdtemp` beside the target, so the final
rename stays on one file system) and published by rename. A folder already at the target is
replaced only when it is a recsys export: its manifest.json parses, holds recsys's keys, and the
folder holds nothing but the files that manifest lists. Anything else (a web app with its own
manifest.json, a user's folder, a file) is refused with `ExportError` and left byte for byte.

On Linux the swap is `renameat2(RENAME_EXCHANGE)`: the old export stays in place until the new one
takes its name, so a reader never finds neither. Elsewhere (or on a file system without it) the
old export is renamed aside, the new one renamed in, and only then the old one removed.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from pathlib import Path

from recsys.atomic_files import process_umask
from recsys.errors import ExportError
from recsys.serving.manifest import MANIFEST

# Keys every manifest the exporter writes has (`write_manifest` and `export_run`).
EXPORT_KEYS = frozenset({"format_version", "files", "artifacts", "vocab"})
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def is_recsys_export(folder: Path) -> bool:
    """True when `folder` is a real directory holding exactly a recsys manifest and its files."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if not isinstance(manifest, dict) or not manifest.keys() >= EXPORT_KEYS:
        return False
    listed = manifest["files"]
    if not isinstance(listed, dict):
        return False
    listed_dirs = {p.as_posix() for name in listed for p in Path(name).parents} - {"."}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink():
            return False
        if path.is_dir() and relative in listed_dirs:
            continue
        if path.is_file() and (relative in listed or relative == MANIFEST):
            continue
        return False
    return True


def check_target(target: Path) -> None:
    """ExportError unless `target` is absent, an empty folder, or a recsys export."""
    if target.is_symlink():
        raise ExportError(f"{target}: is a symbolic link; pass the folder it points to")
    if not target.exists():
        return
    if not target.is_dir():
        raise ExportError(f"{target}: exists and is a file, not an export; refusing to replace it")
    if any(target.iterdir()) and not is_recsys_export(target):
        raise ExportError(
            f"{target}: exists and is not a recsys export (no recsys manifest.json, or files the "
            "manifest does not list); refusing to replace it: pass another out_dir="
        )


def make_staging(target: Path) -> Path:
    """A fresh, empty folder beside `target` that no one else owns."""
    for folder in (target.parent, *target.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                raise ExportError(f"{folder}: is a file, not a folder; out_dir cannot be inside it")
            break
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        )
        staging.chmod(
            0o777 & ~process_umask()
        )  # mkdtemp's 0700 would hide the export from a serving user
        return staging
    except OSError as err:
        raise ExportError(
            f"{target.parent}: cannot write the export there ({err.strerror})"
        ) from err


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def publish(staging: Path, target: Path) -> None:
    """Move `staging` to `target`, replacing an earlier recsys export (or an empty folder) there."""
    check_target(target)
    if not target.exists():
        staging.rename(target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging)  # now the previous export, checked by `check_target` above
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    target.rename(aside)  # onto the empty folder mkdtemp made: POSIX rename replaces it
    try:
        staging.rename(target)
    except BaseException:
        aside.rename(target)
        raise
    shutil.rmtree(aside)


def keep_failed(staging: Path, out_dir: Path) -> Path:
    """Keep a failed export for inspection as `<out>.failed` when that name is free or holds an
    earlier recsys export; else under a fresh `<out>.failed-XXXX` name. Returns where it went."""
    target = out_dir.with_name(out_dir.name + ".failed")
    try:
        publish(staging, target)
        return target
    except ExportError:
        fresh = Path(tempfile.mkdtemp(prefix=f"{out_dir.name}.failed-", dir=out_dir.parent))
        staging.rename(fresh)  # onto the empty folder mkdtemp made
        return fresh
