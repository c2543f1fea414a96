"""Shared fixtures: configs composed from the real conf/ tree, tiny enough for a 2-core CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT.parent / "shared" / "data"))

# Small synthetic world and few epochs: exercises every code path in seconds.
TINY = [
    "data.num_users=300",
    "data.num_items=200",
    "data.mean_interactions=20",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "callbacks.progress_bar=null",
    "trainer.enable_progress_bar=false",
]


def compose_config(
    overrides: list[str], output_dir: Path, config_name: str = "train"
) -> DictConfig:
    """The config `scripts/train.py` would see, with the run directory set to `output_dir`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
    return cfg


@pytest.fixture
def tiny_cfg(tmp_path):
    def make(*overrides: str, output_dir: Path | None = None) -> DictConfig:
        return compose_config([*TINY, *overrides], output_dir or tmp_path / "run")

    return make


def require_data(name: str, *files: str) -> Path:
    """The folder of a local data set under RECSYS_DATA_DIR, or skip saying what is missing."""
    folder = DATA_DIR / name
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        pytest.skip(
            f"{name} not found: {', '.join(missing)} missing under {folder} (set RECSYS_DATA_DIR)"
        )
    return folder
