"""manifest.json of an export: what each file is, how to call it, and how to check it was not altered.

The serving side reads it with `recsys/serving/loader.py` (standard library + torch only).
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path

import torch

MANIFEST = "manifest.json"
FORMAT_VERSION = 1
SUFFIX = {"torchscript": ".pt", "pt2": ".pt2"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file under `folder` except the manifest itself, keyed by relative path."""
    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != MANIFEST
    }


def _tensor(name: str, dtype: str, shape: list, meaning: str, **extra) -> dict:
    return {"name": name, "dtype": dtype, "shape": shape, "meaning": meaning, **extra}


def signature(artifact: str, fmt: str, num_users: int, num_items: int, dim: int) -> dict:
    """Input and output names, dtypes and shapes of one artifact in one format."""
    users = _tensor("user_idx", "int64", ["B"], "user indices (vocab/users.txt line numbers)")
    users["range"] = [0, num_users - 1]
    items = _tensor("item_idx", "int64", ["N"], "item indices (vocab/items.txt line numbers)")
    items["range"] = [0, num_items - 1]
    if artifact == "retriever":
        k = (
            _tensor("k", "int", [], "how many items per user")
            if fmt == "torchscript"
            else _tensor("k", "int64", [], "how many items per user, as a 0-d tensor")
        )
        k["range"] = [1, num_items]
        return {
            "inputs": [users, k],
            "outputs": [
                _tensor("scores", "float32", ["B", "k"], "descending; -inf marks a seen item"),
                _tensor("item_idx", "int64", ["B", "k"], "item indices, best first"),
            ],
        }
    if artifact == "user_encoder":
        return {"inputs": [users], "outputs": [_tensor("embedding", "float32", ["B", dim], "")]}
    if artifact == "item_encoder":
        items["shape"] = ["N"]
        return {"inputs": [items], "outputs": [_tensor("embedding", "float32", ["N", dim], "")]}
    if artifact == "propensity":
        items["shape"] = ["B"]
        return {
            "inputs": [users, items],
            "outputs": [_tensor("probability", "float32", ["B"], "calibrated P(convert)")],
        }
    raise ValueError(f"unknown artifact {artifact!r}")


def environment() -> dict:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_manifest(folder: Path, manifest: dict) -> str:
    """Write manifest.json with fresh file hashes (also set in `manifest`); returns the manifest's
    own sha256, which the serving side can pin."""
    manifest.update(format_version=FORMAT_VERSION, files=file_hashes(folder))
    path = folder / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n")
    return sha256_file(path)
