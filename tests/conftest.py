"""Shared fixtures: configs composed from the real conf/ tree, tiny enough for a 2-core CPU; and the
skips of the `gpu` and `compiler` markers (pyproject.toml) where the machine lacks what they need."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
DATA_DIR = Path(os.environ.get("RECSYS_DATA_DIR", ROOT.parent / "shared" / "data"))

# torch.compile's inductor backend builds its CPU kernels with a C++ compiler.
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("cc")

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


@pytest.fixture
def compiled_names(monkeypatch) -> list[str]:
    """Names of the functions handed to `torch.compile` during the test (compiled as usual)."""
    names: list[str] = []
    real_compile = torch.compile

    def spy(fn=None, *args, **kwargs):
        names.append(getattr(fn, "__name__", repr(fn)))
        return real_compile(fn, *args, **kwargs)

    monkeypatch.setattr(torch, "compile", spy)
    return names


def compile_fallbacks(recorded) -> list[str]:
    """The warnings recsys.perf.compiling gives when compiling failed and a function ran eagerly."""
    return [str(w.message) for w in recorded if str(w.message).startswith("torch.compile of ")]


def pytest_collection_modifyitems(config, items):
    """`gpu` tests skip without CUDA, `compiler` tests without a C++ compiler, saying why."""
    missing = {}
    if not torch.cuda.is_available():
        missing["gpu"] = "needs a CUDA device: torch.cuda.is_available() is False"
    if not CXX:
        missing["compiler"] = "torch.compile on CPU needs a C++ compiler: no c++, g++ or cc on PATH"
    for item in items:
        for marker, reason in missing.items():
            if item.get_closest_marker(marker) is not None:
                item.add_marker(pytest.mark.skip(reason=reason))
