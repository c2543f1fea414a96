"""Reading a run's torch files and fitting its checkpoint to the scorer its config builds, with
every failure a `RunError` naming the file: a truncated, empty, foreign or hostile file (a pickle
payload that `weights_only=True` refuses) is a one-line answer, never a traceback."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from recsys.errors import ConfigError, RunError
from recsys.models.contracts import Scorer, ScorerInputs
from recsys.models.factory import build_scorer


def _first_line(err: BaseException, limit: int = 300) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text[:limit]


def read_torch_file(path: Path, what: str, map_location: Any = "cpu", mmap: bool = False) -> Any:
    """`torch.load(weights_only=True)` of `path`; RunError naming it when it cannot be read."""
    if not path.is_file():
        raise RunError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError:
        raise RunError(
            f"{path}: {what} refused by torch.load(weights_only=True): it holds objects other than "
            "tensors and plain containers (corrupt, or a pickle payload); nothing in it was run"
        ) from None
    except Exception as err:  # noqa: BLE001  (zip, pickle and storage errors alike)
        raise RunError(
            f"{path}: not a readable {what} ({type(err).__name__}: {_first_line(err, 160)}); "
            "it is truncated, corrupt, or not written by recsys"
        ) from None


def training_state(path: Path) -> dict:
    """training_state.pt, checked to hold what serving reads from it."""
    state = read_torch_file(path, "training state")
    if not isinstance(state, dict) or not {"scorer_inputs", "seen"} <= state.keys():
        raise RunError(f"{path}: lacks scorer_inputs or seen; not a recsys training state")
    return state


def scorer_inputs(state: dict, path: Path) -> ScorerInputs:
    try:
        return ScorerInputs.from_state(state["scorer_inputs"])
    except (KeyError, TypeError, ValueError) as err:
        raise RunError(f"{path}: scorer_inputs is incomplete ({_first_line(err)})") from None


def build_run_scorer(cfg: DictConfig, inputs: ScorerInputs, config_path: Path) -> Scorer:
    """The scorer `model.scorer` of the (already checked) config describes."""
    scorer_cfg = (
        cfg.get("model", {}).get("scorer") if isinstance(cfg.get("model"), DictConfig) else None
    )
    if not isinstance(scorer_cfg, DictConfig) or "_target_" not in scorer_cfg:
        raise ConfigError(f"{config_path}: no model.scorer._target_; not a recsys run's config")
    try:
        return build_scorer(scorer_cfg, inputs)
    except (TypeError, ValueError, AttributeError) as err:
        raise ConfigError(
            f"{config_path}: model.scorer cannot be built ({_first_line(err)})"
        ) from None


def load_checkpoint_into(
    scorer: Scorer,
    ckpt: Path,
    map_location: Any,
    check: Callable[[dict, Path], None] | None = None,
) -> None:
    """Load the `scorer.` entries of a Lightning checkpoint's state_dict, as fp32 where floating;
    `check(checkpoint, path)` first refuses a checkpoint of another run (its data fingerprint)."""
    state = read_torch_file(ckpt, "checkpoint", map_location)
    if check is not None and isinstance(state, dict):
        check(state, ckpt)
    weights = state.get("state_dict") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise RunError(f"{ckpt}: no state_dict; not a Lightning checkpoint of a recsys run")
    own = {
        k.removeprefix("scorer."): v.float() if v.is_floating_point() else v
        for k, v in weights.items()
        if isinstance(k, str) and k.startswith("scorer.") and isinstance(v, torch.Tensor)
    }
    try:
        scorer.load_state_dict(own)
    except RuntimeError as err:
        raise RunError(
            f"{ckpt}: does not fit this run's {type(scorer).__name__} (built from "
            f".hydra/resolved.yaml): {_first_line(err)}"
        ) from None
