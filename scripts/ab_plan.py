"""Users per arm for an online A/B test: `python scripts/ab_plan.py baseline_rate=0.05 mde=0.02`."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="ab_plan")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.ab_plan import plan_from_config

    run_or_explain(check_config, cfg, "ab_plan")  # unknown keys, types, ranges: one line
    print(run_or_explain(plan_from_config, cfg).describe())


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("ab_plan"):
        main()
