"""Config resolvers the entry point registers before Hydra composes (kept import-light)."""

from __future__ import annotations

from omegaconf import OmegaConf


def parallel_trials(cpu_default: int = 2) -> int:
    """Trials to run at once (`hydra/launcher=parallel`): one per visible GPU, else `cpu_default`."""
    import torch

    return torch.cuda.device_count() or int(cpu_default)  # NVML count: CUDA stays uninitialised


def register_resolvers() -> None:
    """`${recsys.parallel_trials:2}` in conf/hydra/launcher/parallel.yaml."""
    if not OmegaConf.has_resolver("recsys.parallel_trials"):
        OmegaConf.register_new_resolver("recsys.parallel_trials", parallel_trials)
