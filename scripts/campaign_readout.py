"""Read out a campaign: the conversion lift of the contacted group over the holdout, with intervals.

python scripts/campaign_readout.py plan_dir=<run>/campaign outcomes=events_after.csv
"""

from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="campaign_readout")
def main(cfg: DictConfig) -> None:
    import json

    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.campaign_job import make_readout

    run_or_explain(check_config, cfg, "campaign_readout")
    readout = run_or_explain(make_readout, cfg)
    keys = ("rate_contact", "rate_holdout", "lift", "lift_low", "lift_high", "p_value")
    print(json.dumps({k: readout.summary.get(k) for k in keys}, indent=2))
    print(f"readout written to {cfg.out_dir}")


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("campaign_readout"):
        main()
