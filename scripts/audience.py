"""Rank all users by propensity for an item: `python scripts/audience.py run_dir=... item=<raw id> size=1000`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="audience")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.audience import make_audience

    run_or_explain(check_config, cfg, "audience")  # unknown keys, types, ranges: one line

    run_or_explain(make_audience, cfg)


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("audience"):
        main()
