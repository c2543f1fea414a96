"""Export a trained run for serving: `python scripts/export.py run_dir=<run directory> [format=pt2]`."""

import os
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="export")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.serving.exporter import export_from_config, export_run_dir
    from recsys.tracking.mlflow_run import log_export

    run_or_explain(check_config, cfg, "export")  # unknown keys, types, ranges: one line
    out_dir, manifest = run_or_explain(export_from_config, cfg)
    for name, entry in sorted(manifest["artifacts"].items()):
        for fmt, check in sorted(entry["verification"].items()):
            print(
                f"{entry['files'][fmt]}: parity passed in a fresh process "
                f"(max |diff| {check['max_abs_diff']:.2e}, {check['rows']} rows)"
            )
        for fmt, why in sorted(entry["skipped"].items()):
            print(f"{name} ({fmt}): skipped, {why.splitlines()[0]}")
    if "triton" in manifest:
        print(
            f"triton model repository: {out_dir / 'triton'} ({len(manifest['triton']['models'])} "
            f"models; not started here, serve with: {manifest['triton']['run']})"
        )
    print(f"export: {out_dir}")
    if tracked := log_export(export_run_dir(cfg), out_dir):  # a run trained with logger=mlflow
        print(f"logged to MLflow run {tracked} (artifact path export/)")
    print(
        f"manifest sha256: {manifest['sha256']}  (pin it in the serving config: "
        "scripts/recommend.py --manifest-sha256, or RECSYS_MANIFEST_SHA256)"
    )


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("export"):
        main()
