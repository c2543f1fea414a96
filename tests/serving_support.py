"""Shared helpers of the export and serving tests: one tiny trained run and its export per session,
a fresh `python -I -S` runner, and a fake propensity head on the scorer hook."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch import Tensor, nn

from recsys.models.components.mf import MatrixFactorization
from recsys.run_dir import RunDir
from recsys.serving.exporter import export_from_config
from recsys.train import train
from tests.conftest import CONF, ROOT, TINY, compose_config

SITE_DIR = str(Path(torch.__file__).resolve().parents[1])


class CalibratedPropensityHead(nn.Module):
    """P(convert) = sigmoid(slope * score + intercept), then the down-sampling correction
    q = p / (p + (1 - p) / rate) for negatives kept at `rate` (He et al., 2014)."""

    def __init__(self, scorer: nn.Module, slope: float = 1.5, intercept: float = -0.5, rate=0.25):
        super().__init__()
        self.scorer, self.slope, self.intercept, self.rate = scorer, slope, intercept, rate

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        p = torch.sigmoid(self.slope * self.scorer.score(user_idx, item_idx) + self.intercept)
        return p / (p + (1.0 - p) / self.rate)


class MFWithPropensity(MatrixFactorization):
    """MF plus the propensity hook the exporter looks for."""

    def propensity_module(self) -> nn.Module:
        return CalibratedPropensityHead(self)


class FeatureTowers(nn.Module):
    """A two-tower-shaped scorer on the contract: side features as buffers, MLP towers, unit-norm
    outputs. Stands in for the real two-tower model to show export needs nothing but the contract."""

    def __init__(self, num_users: int, num_items: int, dim: int = 16, features: int = 5):
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        g = torch.Generator().manual_seed(0)
        self.register_buffer("user_features", torch.randn(num_users, features, generator=g))
        self.register_buffer("item_features", torch.randn(num_items, features, generator=g))
        self.user_ids, self.item_ids = nn.Embedding(num_users, dim), nn.Embedding(num_items, dim)
        self.user_mlp = nn.Sequential(
            nn.Linear(dim + features, dim), nn.ReLU(), nn.Linear(dim, dim)
        )
        self.item_mlp = nn.Sequential(
            nn.Linear(dim + features, dim), nn.ReLU(), nn.Linear(dim, dim)
        )

    def user_embedding(self, users: Tensor) -> Tensor:
        x = torch.cat([self.user_ids(users), self.user_features[users]], dim=1)
        return nn.functional.normalize(self.user_mlp(x), dim=1)

    def item_embedding(self, items: Tensor) -> Tensor:
        x = torch.cat([self.item_ids(items), self.item_features[items]], dim=1)
        return nn.functional.normalize(self.item_mlp(x), dim=1)

    def score(self, users: Tensor, items: Tensor) -> Tensor:
        return (self.user_embedding(users) * self.item_embedding(items)).sum(-1)

    def score_all_items(self, users: Tensor) -> Tensor:
        items = torch.arange(self.num_items, device=users.device)
        return self.user_embedding(users) @ self.item_embedding(items).T


def trained_run(base: Path, name: str, *overrides: str) -> Path:
    """Train a tiny run once per session (keyed by `name`) and return its directory."""
    run_dir = base / name
    if not RunDir(run_dir).path("metrics.json").is_file():
        train(compose_config([*TINY, *overrides], run_dir))
    return run_dir


def export_config(*overrides: str):
    """The config `scripts/export.py` would see."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="export", overrides=list(overrides))


def exported(run_dir: Path, out_dir: Path, *overrides: str) -> tuple[Path, dict]:
    """Export `run_dir` into `out_dir` through the export config."""
    return export_from_config(export_config(f"run_dir={run_dir}", f"out_dir={out_dir}", *overrides))


def flip_one_byte(path: Path) -> None:
    """Tamper with a file the way a bad disk or an attacker would: one bit in its middle."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def fresh_python(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -I -S <args>` with torch's site directory as the only extra path: recsys is not
    importable, as on a serving machine."""
    code = (
        "import runpy, sys; sys.path.append(sys.argv.pop(1)); script = sys.argv[1]; "
        "sys.argv = sys.argv[1:]; runpy.run_path(script, run_name='__main__')"
    )
    cmd = [sys.executable, "-I", "-S", "-c", code, SITE_DIR, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT.parent, timeout=300)
