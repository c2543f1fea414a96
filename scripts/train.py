"""Train a recommender: `python scripts/train.py [group=option ...] [key=value ...]`.

Sweeps: `python scripts/train.py -m model.dim=32,64 model.loss=bpr,softmax` (docs/sweeps_multi_gpu.md). Returns the optimised metric so Hydra sweepers (Optuna) can use it.
"""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

from recsys.sweeps.resolvers import register_resolvers

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
register_resolvers()


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="train")
def main(cfg: DictConfig) -> float:
    from recsys.cli import run_or_explain
    from recsys.perf.allocator import retain_freed_memory
    from recsys.perf.threads import apply_threads, processes_per_machine
    from recsys.sweeps.trial import run_trial, trials_at_once

    if cfg.get("retain_freed_memory", True):  # this process only: the library never sets it
        retain_freed_memory()
    # Intra-op threads for this process (recsys/perf/threads.py says why auto is what it is).
    run_or_explain(apply_threads, cfg.get("threads"), processes_per_machine(cfg, trials_at_once()))

    return run_trial(cfg, script=Path(__file__).resolve())


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("train"):
        main()
