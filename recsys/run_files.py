"""Files every run directory holds besides checkpoints: JSON reports, vocabularies, per-user metrics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from torch import Tensor

from recsys.data.interactions import InteractionData


def write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_vocabularies(folder: Path, data: InteractionData) -> None:
    """users.txt / items.txt: line i holds the raw id of index i, readable with the standard library."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, ids in (("users", data.user_ids), ("items", data.item_ids)):
        (folder / f"{name}.txt").write_text("\n".join(str(x) for x in ids) + "\n")
    if data.item_titles is not None:
        (folder / "item_titles.txt").write_text("\n".join(str(x) for x in data.item_titles) + "\n")


def read_vocabulary(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write_per_user_metrics(path: Path, table: dict[str, Tensor], user_ids: np.ndarray) -> None:
    """One row per test user: raw id, index, and every ranking metric (for paired comparisons)."""
    if not table:
        return
    idx = table["user_idx"].numpy()
    frame = pd.DataFrame({"user_id": user_ids[idx].astype(str), "user_idx": idx})
    for name, values in table.items():
        if name != "user_idx":
            frame[name] = values.numpy()
    frame.sort_values("user_idx").to_parquet(path, index=False)
