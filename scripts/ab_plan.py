"""Users per arm for an online A/B test: `python scripts/ab_plan.py baseline_rate=0.05 mde=0.02`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="ab_plan")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.ab_plan import plan

    run_or_explain(check_config, cfg, "ab_plan")  # unknown keys, types, ranges: one line

    keys = ("baseline_rate", "mde", "alpha", "power", "relative", "arms", "daily_users")
    try:
        result = plan(**{k: cfg[k] for k in keys})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    print(result.describe())


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("ab_plan"):
        main()
