"""Shared by the benchmarks: data sets by name, composed from the real configs, and result paths."""

from __future__ import annotations

import os
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from recsys.data.datamodule import InteractionDataModule, build_datamodule

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT.parent / "shared" / "data"))


def _beauty(folder: Path) -> list[str]:
    return [
        "data=beauty",
        *(f"data.{s}={folder / (s + '.txt')}" for s in ("train", "valid", "test")),
    ]


DATASETS = {  # name -> (folder under RECSYS_DATA_DIR, required file, overrides given the folder)
    "synthetic": (None, None, lambda folder: []),
    "ml100k": (
        "ml-100k",
        "u1.base",
        lambda folder: ["data=ml100k", f"data.root={folder}"],
    ),
    "beauty": ("amazon-beauty", "train.txt", _beauty),
}


def compose_config(overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = "/tmp/recsys-benchmark"
    return cfg


def load_datamodule(
    name: str, overrides: list[str]
) -> tuple[DictConfig | None, InteractionDataModule | None]:
    """Config and loaded datamodule for a named data set, or (None, None) with a printed reason."""
    sub, required, data_overrides = DATASETS[name]
    folder = DATA_DIR / sub if sub else None
    if folder is not None and not (folder / required).is_file():
        print(f"skipping {name}: {folder / required} not found (set RECSYS_DATA_DIR)")
        return None, None
    cfg = compose_config([*data_overrides(folder), *overrides])
    dm = build_datamodule(cfg.data, cfg.seed)
    dm.load()
    return cfg, dm


def results_path(name: str) -> Path:
    folder = ROOT / "benchmarks" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
