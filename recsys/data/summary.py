"""Load any data config and describe it without training (`scripts/inspect_data.py`)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from recsys.data.datamodule import build_datamodule
from recsys.data.ingest.report import format_report


def inspect_data(cfg: DictConfig) -> dict[str, Any]:
    """The summary `train` logs at the start of a run, plus the loading report, as a dict."""
    data = build_datamodule(cfg.data, cfg.seed).load()
    summary = data.summary()
    return {
        "summary": summary,
        "report": data.report,
        "test_fingerprint": data.test.fingerprint(),
        "text": format_report(data.report, summary),
    }
