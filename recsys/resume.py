"""Resuming continues a run: `ckpt_path=<run>/checkpoints/last.ckpt` takes the data, model, seed,
trainer and callbacks that run was trained with from its `.hydra/resolved.yaml` (written by recsys,
so it survives Hydra rewriting `.hydra/config.yaml` when the resume runs in the same directory):
the epochs and early stopping of its recipe go on as they were.

On the command line, a data, model or seed key (`model.dim=32`, `data=ml100k`, `experiment=...`)
makes that section the user's: the saved config holds resolved values, so a key set on top of it
would not reach what it interpolates into. Those sections are checked against the checkpoint
before training (recsys/run_identity.py), so asking for another model fails in one line. Trainer
and callback keys (`trainer.enable_progress_bar=false`) are set on top of the restored section, and
paths inside the resumed run directory are moved to this run's (`checkpoints/`, reports). A library
call (`train(cfg)`) has no command line: its config is taken as meant and only checked, the error
naming the keys the checkpoint needs.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from recsys.run_dir import RunDir
from recsys.run_identity import checkpoint_file

log = logging.getLogger(__name__)

# The parts of a config that shape the weights, the data they were trained on, or how training goes.
RUN_SECTIONS = ("data", "model", "seed", "trainer", "callbacks")
# Sections a command-line key adjusts rather than replaces: none of their values interpolate.
KEYWISE_SECTIONS = ("trainer", "callbacks")
# Config groups whose choice on the command line replaces those sections.
GROUP_SECTIONS = {
    "experiment": RUN_SECTIONS,
    "hparams_search": RUN_SECTIONS,
    "optimizer": ("model",),
    "scheduler": ("model",),
}


def command_line() -> tuple[set[str], list[str]] | None:
    """(sections the command line replaces, dotted keys it sets inside the others), or None
    outside Hydra (a library call)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return None
    replaced: set[str] = set()
    keys: list[str] = []
    for override in HydraConfig.get().overrides.task:
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        top = key.split(".", 1)[0]
        if top in GROUP_SECTIONS:
            replaced.update(GROUP_SECTIONS[top])
        elif top in KEYWISE_SECTIONS and "." in key:
            keys.append(key)
        elif top in RUN_SECTIONS:
            replaced.add(top)
    return replaced, keys


def checkpoint_run(ckpt_path: str | Path) -> RunDir | None:
    """The run directory a checkpoint sits in (`<run>/checkpoints/<file>.ckpt`), if it is one."""
    path = checkpoint_file(ckpt_path)
    run = RunDir(path.resolve().parent.parent)
    return run if path.parent.name == "checkpoints" and run.config_path.is_file() else None


def _plain(cfg: DictConfig, key: str):
    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def _moved(section, old_root: str, new_root: str):
    """`section` with every path inside the resumed run directory moved to this run's."""
    if not isinstance(section, DictConfig):
        return section

    def move(value):
        if isinstance(value, dict):
            return {k: move(v) for k, v in value.items()}
        if isinstance(value, list):
            return [move(v) for v in value]
        if isinstance(value, str) and (value == old_root or value.startswith(old_root + "/")):
            return new_root + value[len(old_root) :]
        return value

    return OmegaConf.create(move(OmegaConf.to_container(section, resolve=True)))


def restore_run_config(cfg: DictConfig) -> DictConfig:
    """`cfg` with the resumed run's sections wherever the command line left them (see above)."""
    if not cfg.get("ckpt_path"):
        return cfg
    run = checkpoint_run(cfg.ckpt_path)
    line = command_line()
    if run is None or line is None:
        return cfg
    replaced, keys = line
    saved = run.config()
    restored = copy.deepcopy(cfg)
    old_root, new_root = str(saved.paths.output_dir), str(cfg.paths.output_dir)
    with open_dict(restored):
        for section in RUN_SECTIONS:
            if section not in replaced and section in saved:
                restored[section] = _moved(saved[section], old_root, new_root)
        for key in keys:
            if key.split(".", 1)[0] not in replaced:
                OmegaConf.update(restored, key, OmegaConf.select(cfg, key), force_add=True)
    changed = [s for s in RUN_SECTIONS if _plain(cfg, s) != _plain(restored, s)]
    if not changed:
        return cfg
    log.info("resuming %s: %s as that run was trained", run.root, ", ".join(changed))
    return restored
