"""Which classes and functions a saved config may name: a run directory is data, never code.

A run directory (or a sweep's best_config.yaml) can come from someone else. Its config is rebuilt
with Hydra, which imports and calls whatever `_target_` names: `builtins.open`, `shutil.rmtree`,
`os.system` would run. So before anything is built from a saved config, every `_target_` in it
(and every other key that names a class, such as the cold-start source's `wrapped`) must be either
recsys's own class or function, or one of the few third-party names recsys's conf/ ships.

A user who trains with classes of their own names them, exactly, in the environment variable
`RECSYS_TRUSTED_TARGETS` (comma-separated dotted paths): the process's owner vouches for them,
which a run directory cannot do for itself.

The rule is checked on the string first (a dotted path under `recsys.`, no private or dunder part,
or an exact third-party name), and only then is the recsys path resolved, importing recsys modules
alone. What it names must be a class defined in recsys (sources, scorers, losses, modules,
callbacks: their constructors only store arguments), or a function of `recsys.optim` (optimizer
and schedule factories), at module level. That refuses a re-export (`recsys.some_module.shutil.
rmtree`), a name imported into a recsys module from elsewhere (its `__module__` is not recsys's),
a method (`recsys.run_dir.RunDir.write_json`) and recsys's own file writers (`write_atomic`).
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from recsys.errors import ConfigError

# The third-party classes conf/ names (trainer, callbacks, logger, DDP strategy), exactly.
THIRD_PARTY_TARGETS = frozenset(
    {
        "pytorch_lightning.Trainer",
        "pytorch_lightning.callbacks.EarlyStopping",
        "pytorch_lightning.callbacks.ModelCheckpoint",
        "pytorch_lightning.callbacks.TQDMProgressBar",
        "pytorch_lightning.loggers.TensorBoardLogger",
        "pytorch_lightning.strategies.DDPStrategy",
    }
)
TRUSTED_ENV = "RECSYS_TRUSTED_TARGETS"
# Keys besides `_target_` whose string value is a class path recsys imports (ColdStartSource).
CLASS_PATH_KEYS = ("wrapped",)
_RECSYS_PATH = re.compile(r"recsys(\.[A-Za-z][A-Za-z0-9_]*)+")


def _refuse(key: str, value: Any, source: str | Path, why: str) -> ConfigError:
    return ConfigError(
        f"{source}: {key}={value!r} {why}; a saved config may only name recsys's own classes, "
        f"the Lightning trainer and callbacks conf/ ships, or a name listed in ${TRUSTED_ENV}"
    )


FACTORY_PACKAGES = ("recsys.optim.",)  # whose module-level functions a config may call


def _buildable(obj: Any) -> bool:
    """A module-level class of recsys, or a module-level function of a factory package."""
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__name__", None)
    if not module.startswith("recsys.") or name is None or getattr(obj, "__qualname__", "") != name:
        return False
    return inspect.isclass(obj) or (inspect.isfunction(obj) and module.startswith(FACTORY_PACKAGES))


def _resolve_recsys(path: str) -> Any:
    """The object `path` names, importing recsys modules only; None where it leaves recsys."""
    parts = path.split(".")
    obj: Any = importlib.import_module(parts[0])
    name = parts[0]
    for part in parts[1:]:
        name = f"{name}.{part}"
        child = getattr(obj, part, None)
        if child is None and isinstance(obj, ModuleType) and hasattr(obj, "__path__"):
            try:
                child = importlib.import_module(name)  # a recsys submodule not imported yet
            except ImportError:
                return None
        if child is None or (isinstance(child, ModuleType) and child.__name__ != name):
            return None  # missing, or a module re-exported from elsewhere (`shutil`, `os`)
        obj = child
    return obj


def _trusted_by_user() -> set[str]:
    return {name.strip() for name in os.environ.get(TRUSTED_ENV, "").split(",") if name.strip()}


def check_target(key: str, value: Any, source: str | Path) -> str:
    """`value` if recsys may build what it names; ConfigError naming `key` and `source` otherwise."""
    if not isinstance(value, str):
        raise _refuse(key, value, source, "is not a dotted class path")
    if value in THIRD_PARTY_TARGETS or value in _trusted_by_user():
        return value
    if not _RECSYS_PATH.fullmatch(value):
        raise _refuse(key, value, source, "is not recsys's")
    obj = _resolve_recsys(value)
    if obj is None or not _buildable(obj):
        raise _refuse(key, value, source, "is not a recsys class or optimizer factory")
    return value


def _class_paths(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """(key path, value) of every `_target_` and class-path key under `node`, values resolved."""
    if isinstance(node, DictConfig):
        for key in node:
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_target_" or key in CLASS_PATH_KEYS:
                yield path, _value(node, key)
            else:
                yield from _class_paths(node._get_node(key), path)
    elif isinstance(node, ListConfig):
        for i in range(len(node)):
            yield from _class_paths(node._get_node(i), f"{prefix}[{i}]")


def _value(node: DictConfig, key: str) -> Any:
    """The value at `key`, interpolations resolved (best_config.yaml is not resolved)."""
    try:
        return node[key]
    except Exception as err:  # noqa: BLE001  (any resolution failure: the key cannot be trusted)
        return f"<unresolvable: {type(err).__name__}>"


def check_config(cfg: DictConfig, source: str | Path) -> DictConfig:
    """`cfg` if every class path in it is allowed (`check_target`); ConfigError naming the first
    key that is not."""
    for key, value in _class_paths(cfg, ""):
        check_target(key, value, source)
    return cfg


def load_trusted(path: Path) -> DictConfig:
    """Read a saved YAML config and check it (`check_config`); a garbled file is a ConfigError."""
    try:
        cfg = OmegaConf.load(path)
    except Exception as err:  # noqa: BLE001  (yaml and OmegaConf each raise their own)
        first = " ".join(str(err).split())[:200]
        raise ConfigError(f"{path}: not a readable YAML config ({first})") from err
    if not isinstance(cfg, DictConfig):
        raise ConfigError(f"{path}: holds a {type(cfg).__name__}, not a mapping of config keys")
    return check_config(cfg, path)


# Config names that are saved configs rather than recsys's conf/: a sweep's best job, re-run with
# `scripts/train.py --config-path <sweep> --config-name best_config` (docs/sweeps_multi_gpu.md).
SAVED_CONFIG_NAMES = ("best_config",)


def check_rerun(cfg: DictConfig) -> None:
    """Check the targets of a training config when it is a saved one being re-run."""
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized() and HydraConfig.get().job.config_name in SAVED_CONFIG_NAMES:
        check_config(cfg, f"{HydraConfig.get().job.config_name}.yaml")
