"""Load an export directory safely: standard library and torch only, no recsys needed.

Copy this one file into a serving codebase (every export also ships a copy as `loader.py`).
Each file is checked against the sha256 in manifest.json before torch reads it, and an artifact
whose parity check failed at export time is refused. The manifest itself can be pinned with
`expected_manifest_sha256` (the exporter prints it), which turns the check into tamper evidence
for the whole directory rather than for single files.

    from loader import load_artifact, read_vocabulary
    retriever = load_artifact("run/export", "retriever")       # TorchScript, or pt2 if only that
    scores, items = retriever(torch.tensor([user_index]), 10)
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

MANIFEST = "manifest.json"


class IntegrityError(Exception):
    """A file differs from its manifest entry, is missing, or failed verification at export."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(export_dir, expected_manifest_sha256=None) -> dict:
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"{path}: no manifest; is {export_dir} an export directory?")
    if expected_manifest_sha256 is not None and _sha256(path) != expected_manifest_sha256:
        raise IntegrityError(f"{path}: sha256 differs from the pinned value")
    return json.loads(path.read_text())


def checked_path(export_dir, manifest: dict, relative: str) -> Path:
    """The path of `relative` after its sha256 matched the manifest; IntegrityError otherwise."""
    path = Path(export_dir) / relative
    expected = manifest.get("files", {}).get(relative)
    if expected is None:
        raise IntegrityError(f"{path}: not listed in {MANIFEST}")
    if not path.is_file():
        raise IntegrityError(f"{path}: listed in {MANIFEST} but missing")
    actual = _sha256(path)
    if actual != expected:
        raise IntegrityError(
            f"{path}: sha256 {actual[:12]}... does not match the manifest ({expected[:12]}...); "
            "the file was altered or corrupted after export"
        )
    return path


def verify_all(export_dir, expected_manifest_sha256=None) -> dict:
    """Check every file listed in the manifest; returns the manifest."""
    manifest = read_manifest(export_dir, expected_manifest_sha256)
    for relative in manifest.get("files", {}):
        checked_path(export_dir, manifest, relative)
    return manifest


def artifact_formats(manifest: dict, name: str) -> list:
    entry = manifest.get("artifacts", {}).get(name)
    return sorted(entry["files"]) if entry else []


def load_artifact(
    export_dir,
    name: str = "retriever",
    fmt=None,
    expected_manifest_sha256=None,
    allow_unverified: bool = False,
    map_location: str = "cpu",
):
    """A callable module: TorchScript (`torch.jit.load`) or pt2 (`torch.export.load(...).module()`).

    `fmt=None` prefers TorchScript when the export has both. pt2 modules take tensors only
    (`k` as a 0-d int64 tensor).
    """
    manifest = read_manifest(export_dir, expected_manifest_sha256)
    formats = artifact_formats(manifest, name)
    if not formats:
        have = sorted(manifest.get("artifacts", {}))
        raise IntegrityError(f"{export_dir}: no artifact {name!r} (this export has {have})")
    fmt = fmt or ("torchscript" if "torchscript" in formats else formats[0])
    if fmt not in formats:
        raise IntegrityError(f"{export_dir}: {name} was not exported as {fmt} (only {formats})")
    entry = manifest["artifacts"][name]
    check = entry.get("verification", {}).get(fmt, {})
    if not allow_unverified and check.get("passed") is not True:
        raise IntegrityError(
            f"{export_dir}: {name} ({fmt}) did not pass its parity check at export: {check}"
        )
    path = checked_path(export_dir, manifest, entry["files"][fmt])
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch.jit is deprecated upstream; pt2 is the way out
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=map_location)
    return torch.export.load(str(path)).module()


def read_vocabulary(export_dir, name: str, manifest=None) -> list:
    """Lines of a vocabulary file named in the manifest (`users`, `items`, `item_titles`, ...):
    line i belongs to index i (for `popular_items`, line i is the i-th most popular raw item id).

    UTF-8, one id per "\n"-terminated line, split on "\n" alone: an id keeps its spaces, tabs and
    characters such as U+2028 that `str.splitlines()` would take for line ends."""
    manifest = manifest or read_manifest(export_dir)
    relative = manifest.get("vocab", {}).get(name)
    if relative is None:
        return []
    data = checked_path(export_dir, manifest, relative).read_bytes()
    return data.decode("utf-8").split("\n")[:-1]
