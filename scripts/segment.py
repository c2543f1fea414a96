"""Segment the users of a trained run: `python scripts/segment.py run_dir=<run> k=8` (or `k=auto`)."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="segment")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.marketing.segments import segment_run

    run_or_explain(check_config, cfg, "segment")  # unknown keys, types, ranges: one line

    keys = ("k", "features", "feature_weight", "normalize", "k_min", "k_max", "n_init",
            "silhouette_sample", "silhouette_tolerance", "checkpoint", "top", "seed")  # fmt: skip
    result = run_or_explain(
        segment_run, cfg.run_dir, out_dir=cfg.output_dir, **{k: cfg[k] for k in keys}
    )
    print(result.summary["k_reason"])
    print(result.files["profiles_md"].read_text())
    for name, path in result.files.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("segment"):
        main()
