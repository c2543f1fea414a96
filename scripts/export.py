"""Export a trained run for serving: `python scripts/export.py run_dir=<run directory> [format=pt2]`."""

import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@hydra.main(version_base="1.3", config_path=str(ROOT / "conf"), config_name="export")
def main(cfg: DictConfig) -> None:
    from recsys.cli import run_or_explain
    from recsys.config import check_config
    from recsys.errors import DataError, ExportError, RunError
    from recsys.serving.exporter import export_from_config

    run_or_explain(check_config, cfg, "export")  # unknown keys, types, ranges: one line

    try:
        out_dir, manifest = export_from_config(cfg)
    except (ExportError, RunError, DataError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    for name, entry in sorted(manifest["artifacts"].items()):
        for fmt, check in sorted(entry["verification"].items()):
            print(
                f"{entry['files'][fmt]}: parity passed in a fresh process "
                f"(max |diff| {check['max_abs_diff']:.2e}, {check['rows']} rows)"
            )
        for fmt, why in sorted(entry["skipped"].items()):
            print(f"{name} ({fmt}): skipped, {why.splitlines()[0]}")
    print(f"export: {out_dir}")
    print(f"manifest sha256: {manifest['sha256']}  (pin it in the serving config)")


if __name__ == "__main__":
    from recsys.config.hydra_errors import one_line_hydra_errors

    with one_line_hydra_errors("export"):
        main()
