"""A `scripts/train.py` command line in-process: Hydra's record of the overrides, as `@hydra.main`
leaves it for the code it calls (recsys/resume.py reads which sections the user named)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

from tests.conftest import CONF


@contextmanager
def command_line(*overrides: str) -> Iterator[None]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        hydra_cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    HydraConfig.instance().set_config(hydra_cfg)
    try:
        yield
    finally:
        HydraConfig.instance().cfg = None
