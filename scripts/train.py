"""Train a recommender: `python scripts/train.py [group=option ...] [key=value ...]`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="train")
def main(cfg: DictConfig) -> float | None:
    from recsys.cli import run_or_explain
    from recsys.train import train

    metrics, _ = run_or_explain(train, cfg)
    return metrics.get(f"best/{cfg.model.module.monitor}")


if __name__ == "__main__":
    main()
