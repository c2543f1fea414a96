"""Load a finished run directory back: its config, data, and the trained scorer (for export,
segmentation, audiences, comparisons). Checkpoints are read with `weights_only=True`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from recsys.data.datamodule import InteractionDataModule, build_datamodule
from recsys.data.interactions import InteractionData
from recsys.errors import RunError
from recsys.run_dir import RunDir


@dataclass
class TrainedRun:
    run_dir: Path
    cfg: DictConfig
    datamodule: InteractionDataModule
    data: InteractionData
    scorer: nn.Module
    checkpoint_path: Path

    @property
    def metrics(self) -> dict:
        path = self.run_dir / "metrics.json"
        return json.loads(path.read_text()) if path.is_file() else {}


def find_checkpoint(run_dir: Path, which: str = "best") -> Path:
    """'best' (the epochNNN file ModelCheckpoint kept), 'last', or an explicit path."""
    folder = run_dir / "checkpoints"
    if which not in ("best", "last"):
        path = Path(which)
        if not path.is_file():
            raise RunError(f"{path}: checkpoint not found")
        return path
    if which == "last" and (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    best = sorted(folder.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime)
    if best:
        return best[-1]
    if (folder / "last.ckpt").is_file():
        return folder / "last.ckpt"
    raise RunError(
        f"{run_dir}: no checkpoint in {folder}; train it again with hydra.run.dir={run_dir}"
    )


def load_scorer_weights(
    scorer: nn.Module, checkpoint: Path, map_location: str | torch.device = "cpu"
) -> nn.Module:
    state = torch.load(checkpoint, map_location=map_location, weights_only=True)["state_dict"]
    own = {
        k.removeprefix("scorer."): v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if k.startswith("scorer.")
    }
    scorer.load_state_dict(own)
    return scorer.float().eval()


def load_run(
    run_dir: str | Path, checkpoint: str = "best", map_location: str | torch.device = "cpu"
) -> TrainedRun:
    """Rebuild data and scorer from the run's saved config, then load the trained weights on CPU.

    Weights trained in bf16-mixed are fp32 masters, and float tensors are cast to fp32 anyway, so a
    GPU run loads on a CPU-only machine.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / ".hydra" / "resolved.yaml"
    if not config_path.is_file():
        raise RunError(
            f"{run_dir}: not a recsys run directory (no .hydra/resolved.yaml); run scripts/train.py first"
        )
    cfg = OmegaConf.load(config_path)
    datamodule = build_datamodule(cfg.data, cfg.seed)
    data = datamodule.load()
    ckpt = find_checkpoint(run_dir, checkpoint)
    scorer, _ = RunDir(run_dir).load_scorer(ckpt, map_location)
    return TrainedRun(run_dir, cfg, datamodule, data, scorer, ckpt)
