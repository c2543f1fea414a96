"""manifest.json of an export: what each file is, how to call it, and how to check it was not altered.

The serving side reads it with `recsys/serving/loader.py` (standard library + torch only).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from omegaconf import OmegaConf

if TYPE_CHECKING:
    from recsys.run_dir import TrainedRun

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


def embedding_columns(vectors: tuple[torch.Tensor, torch.Tensor]) -> str:
    """What the encoders' columns are: a model with an item bias (MF) appends a column that is a
    constant 1 for users and the bias for items, so that a dot product is the whole score."""
    users, items = vectors
    dim = int(items.shape[1])
    text = f"user_encoder and item_encoder give {dim} columns; user @ item.T is the score"
    if users.numel() and bool((users[:, -1] == 1).all()):
        text += (
            f"; column {dim - 1} is the item bias on the item side and a constant 1 on the user "
            f"side (so columns 0..{dim - 2} are the learned factors)"
        )
    return text


def describe(run: TrainedRun, seen, exclude, vectors) -> dict:
    """The manifest's account of the model, the run, the data and the serving conventions."""
    scorer, report = run.scorer, run.run_dir.read_json("data_report.json")
    return {
        "model": {
            "name": str(run.cfg.model.get("name", type(scorer).__name__)),
            "scorer_class": f"{type(scorer).__module__}.{type(scorer).__qualname__}",
            "config": OmegaConf.to_container(run.cfg.model, resolve=True),
        },
        "run": {
            "run_dir": str(run.run_dir.root),
            "checkpoint": str(run.checkpoint_path),
            "metrics": run.metrics,
            "test_fingerprint": report.get("test_fingerprint"),
        },
        "data": {
            "name": report.get("summary", {}).get("name", run.cfg.data.get("name")),
            "num_users": scorer.num_users,
            "num_items": scorer.num_items,
            "seen_splits": list(exclude),
            "seen_pairs": int(seen.indices.numel()),
        },
        "serving": {
            "ranking": "score descending; ties go to the lower item index (as in evaluation)",
            "seen_items": f"items of the {'+'.join(exclude)} splits score -inf and come last",
            "unknown_users": "recommend vocab/popular_items.txt (most popular first)",
            "embedding_columns": embedding_columns(vectors),
            "loader": "loader.py: checks sha256 against this manifest before torch loads a file",
        },
        "environment": environment(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
