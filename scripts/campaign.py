"""Plan a campaign from trained customer models: whom to contact, what to offer, a seeded holdout.

python scripts/campaign.py run_dir=<churn run> budget=2000 value_run_dir=<value run> strategy=retain
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="campaign")
def main(cfg: DictConfig) -> None:
    import json

    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.campaign_job import make_plan

    run_or_explain(check_config, cfg, "campaign")
    plan = run_or_explain(make_plan, cfg)
    print(
        json.dumps(
            {
                k: plan.summary[k]
                for k in ("targeted", "contacted", "holdout", "expected_conversions", "sample_size")
            },
            indent=2,
        )
    )
    print(f"plan written to {cfg.out_dir}")


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("campaign"):
        main()
