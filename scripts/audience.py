"""Rank all users by propensity for an item: `python scripts/audience.py run_dir=... item=<raw id> size=1000`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="audience")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.marketing.audience import AudienceError, make_audience
    from recsys.run_loading import RunError

    try:
        run_or_explain(make_audience, cfg)
    except (AudienceError, RunError) as err:  # a wrong request: one line, no traceback
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
