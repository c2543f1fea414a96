"""Print what a data config loads, without training: sizes, density, activity quantiles, and every
loading step with the rows it removed. Same config tree as training:

    python scripts/inspect_data.py data=ml100k data.root=../shared/data/ml-100k
    python scripts/inspect_data.py data=interactions data.path=log.csv data.columns.user=customer
"""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))
# Inspecting writes nothing: no run directory, no saved config, Python's default logging (warnings
# only: Hydra's own console logging would print the report that loading logs, then print() again).
OVERRIDES = (
    "hydra.run.dir=.",
    "hydra.output_subdir=null",
    "hydra/job_logging=none",
    "hydra/hydra_logging=none",
)
for override in OVERRIDES:
    if not any(a.startswith(override.split("=")[0] + "=") for a in sys.argv[1:]):
        sys.argv.append(override)


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="train")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.data.summary import inspect_data

    result = run_or_explain(inspect_data, cfg)
    print(result["text"])
    print(f"  test fingerprint {result['test_fingerprint']}")


if __name__ == "__main__":
    main()
