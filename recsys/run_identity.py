"""What a checkpoint's weights belong to: the data they were trained on and the config that shaped
them. Stored in every checkpoint (`RunIdentity` callback) and checked before the weights are used,
so a resume with other data or another model, or an export pairing one run's weights with another
run's vocabularies, fails with one line instead of training or serving nonsense.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf

from recsys.data.interactions import InteractionData
from recsys.errors import RunError
from recsys.run_loading import read_torch_file

CHECKPOINT_KEY = "recsys_identity"  # the checkpoint dict's entry (plain str/int/dict: weights_only)


def data_fingerprint(data: InteractionData) -> str:
    """sha256 over every split's (user, item) pairs and both vocabularies: equal iff the model's
    indices mean the same ids and it saw the same interactions."""
    digest = hashlib.sha256()
    for split in (data.train, data.valid, data.test):
        digest.update(split.fingerprint().encode())
    for ids in (data.user_ids, data.item_ids):
        digest.update("\n".join(str(x) for x in ids).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def run_identity(cfg: DictConfig, data: InteractionData) -> dict[str, Any]:
    """The identity of a run's weights: data fingerprint, scorer config, sizes, and a hash of the
    last two (what must match for a state_dict to mean the same thing)."""
    scorer = OmegaConf.to_container(cfg.model.scorer, resolve=True)
    shape = {"scorer": scorer, "num_users": data.num_users, "num_items": data.num_items}
    text = json.dumps(shape, sort_keys=True, default=str)
    return {
        "data_fingerprint": data_fingerprint(data),
        "config_hash": hashlib.sha256(text.encode()).hexdigest(),
        **shape,
    }


class RunIdentity(pl.Callback):
    """Writes the run's identity into every checkpoint Lightning saves (best and last)."""

    def __init__(self, identity: dict[str, Any]):
        self.identity = identity

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.identity


def checkpoint_file(path: str | Path, what: str = "ckpt_path") -> Path:
    """`path` as a checkpoint file that exists, or a RunError saying what was given instead."""
    path = Path(path)
    if path.is_dir():
        raise RunError(f"{what}={path}: a directory; name a checkpoint file (e.g. last.ckpt)")
    if not path.is_file():
        raise RunError(f"{what}={path}: no such checkpoint file")
    return path


def read_checkpoint(path: str | Path, what: str = "ckpt_path") -> dict[str, Any]:
    """A checkpoint as data (never code), or a RunError naming the file."""
    return read_torch_file(
        checkpoint_file(path, what), "checkpoint", mmap=True
    )  # identity only  # mmap: only the identity is read here


def _flat(tree: Any, prefix: str) -> dict[str, Any]:
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        out.update(_flat(value, f"{prefix}.{key}"))
    return out


def identity_differences(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """`key=saved (now current)` for every scorer-config key or size that differs."""
    old = _flat(saved.get("scorer", {}), "model.scorer")
    new = _flat(current.get("scorer", {}), "model.scorer")
    for size in ("num_users", "num_items"):
        old[f"data {size}"], new[f"data {size}"] = saved.get(size), current.get(size)
    return [
        f"{k}={old.get(k)} (now {new.get(k)})"
        for k in sorted({*old, *new})
        if old.get(k) != new.get(k)
    ]


def check_resume(
    path: str | Path, identity: dict[str, Any], module: torch.nn.Module, max_epochs: int | None
) -> None:
    """Before `fit(ckpt_path=...)`: the checkpoint's data and weight shapes are this run's, and it
    has epochs left to train (Lightning refuses a checkpoint past max_epochs with a traceback)."""
    checkpoint = read_checkpoint(path)
    epoch = checkpoint.get("epoch")
    if isinstance(epoch, int) and max_epochs not in (None, -1) and epoch > max_epochs:
        raise RunError(
            f"ckpt_path={path}: saved at epoch {epoch}, past trainer.max_epochs={max_epochs}; "
            f"set trainer.max_epochs to {epoch} or more"
        )
    saved = checkpoint.get(CHECKPOINT_KEY)
    if saved is not None:
        if saved["data_fingerprint"] != identity["data_fingerprint"]:
            raise RunError(
                f"ckpt_path={path}: trained on other data (data fingerprint "
                f"{saved['data_fingerprint'][:12]}, this run's {identity['data_fingerprint'][:12]}); "
                "resume with the data it was trained on, or start a new run without ckpt_path"
            )
        if saved["config_hash"] != identity["config_hash"]:
            diffs = identity_differences(saved, identity)
            raise RunError(
                f"ckpt_path={path}: trained with another model config: {'; '.join(diffs)}; "
                "resume with the checkpoint's values or start a new run"
            )
    # Also for checkpoints written before identities: a shape mismatch named, not a state_dict dump.
    state = checkpoint.get("state_dict", {})
    own = module.state_dict()
    wrong = [
        f"{k} {tuple(state[k].shape) if k in state else 'missing'} (now {tuple(v.shape)})"
        for k, v in own.items()
        if k not in state or tuple(state[k].shape) != tuple(v.shape)
    ]
    wrong += [f"{k} (not in this model)" for k in state if k not in own]
    if wrong:
        raise RunError(
            f"ckpt_path={path}: its weights do not fit this model: {'; '.join(wrong[:4])}"
            f"{' ...' if len(wrong) > 4 else ''}; resume with the config it was trained with"
        )


def check_checkpoint_data(
    checkpoint: dict[str, Any], path: Path, run_fingerprint: str | None
) -> None:
    """A checkpoint loaded through a run directory was trained on that run's data (export,
    segment...): else its indices would be read through another run's vocabularies."""
    saved = (checkpoint.get(CHECKPOINT_KEY) or {}).get("data_fingerprint")
    if saved and run_fingerprint and saved != run_fingerprint:
        raise RunError(
            f"{path}: trained on other data than this run directory's (data fingerprint "
            f"{saved[:12]}, the run's {run_fingerprint[:12]}); use the checkpoint with its own run"
        )
