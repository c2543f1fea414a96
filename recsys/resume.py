"""Resuming continues a run: `ckpt_path=<run>/checkpoints/last.ckpt` takes the data, model and seed
that run was trained with from its `.hydra/resolved.yaml` (written by recsys, so it survives Hydra
rewriting `.hydra/config.yaml` when the resume runs in the same directory).

On the command line, a section the user names (`model.dim=32`, `data=ml100k`, `experiment=...`) is
the user's: it is kept, and checked against the checkpoint before training (recsys/run_identity.py),
so asking for another model fails in one line. A library call (`train(cfg)`) has no command line:
its config is taken as meant and only checked, the error naming the keys the checkpoint needs.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from recsys.errors import RunError
from recsys.run_dir import RunDir

log = logging.getLogger(__name__)

# The parts of a config that shape the weights or the data they were trained on.
RUN_SECTIONS = ("data", "model", "seed")
# Config groups whose choice on the command line changes those sections.
GROUP_SECTIONS = {
    "experiment": RUN_SECTIONS,
    "hparams_search": RUN_SECTIONS,
    "optimizer": ("model",),
    "scheduler": ("model",),
}


def command_line_sections() -> set[str] | None:
    """The run sections the Hydra command line sets, or None outside Hydra (a library call)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    named: set[str] = set()
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~")
        top = key.split(".", 1)[0].split("@", 1)[0]
        named.update(GROUP_SECTIONS.get(top, (top,) if top in RUN_SECTIONS else ()))
    return named


def checkpoint_run(ckpt_path: str | Path) -> RunDir | None:
    """The run directory a checkpoint sits in (`<run>/checkpoints/<file>.ckpt`), if it is one."""
    path = Path(ckpt_path)
    if path.is_dir():
        raise RunError(f"ckpt_path={path}: a directory; name a checkpoint file (e.g. last.ckpt)")
    if not path.is_file():
        raise RunError(f"ckpt_path={path}: no such checkpoint file")
    run = RunDir(path.resolve().parent.parent)
    return run if path.parent.name == "checkpoints" and run.config_path.is_file() else None


def _plain(cfg: DictConfig, key: str):
    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def restore_run_config(cfg: DictConfig) -> DictConfig:
    """`cfg` with the resumed run's data, model and seed wherever the command line left them."""
    if not cfg.get("ckpt_path"):
        return cfg
    run = checkpoint_run(cfg.ckpt_path)
    named = command_line_sections()
    if run is None or named is None:
        return cfg
    saved = run.config()
    restored = [
        s
        for s in RUN_SECTIONS
        if s not in named and s in saved and _plain(cfg, s) != _plain(saved, s)
    ]
    if not restored:
        return cfg
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        for section in restored:
            cfg[section] = saved[section]
    log.info("resuming %s: %s as that run was trained", run.root, ", ".join(restored))
    return cfg
