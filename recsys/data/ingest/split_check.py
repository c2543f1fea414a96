"""Refuse, before any training, a data set whose validation or test split is empty.

Lightning would otherwise fail far from the cause (a monitored metric never logged, a test loop
without batches, once after training finished). The error names the split and the data report
step that emptied it, so the user knows which setting or which rows to look at.
"""

from __future__ import annotations

from typing import Any

from recsys.data.interactions import InteractionData
from recsys.errors import DataError

ROLES = {"valid": "validation", "test": "test"}
HINTS = {
    "random": "raise split.{role}_fraction (rows x fraction must round to 1 or more)",
    "leave_last_n": "users need more than split.test_n + split.valid_n rows to give any",
    "temporal": "move split.cutoff / split.valid_cutoff inside the data's time range",
}


def check_splits(data: InteractionData) -> None:
    """DataError for the first of valid, test that holds no rows."""
    for role, split in (("valid", data.valid), ("test", data.test)):
        if len(split) == 0:
            raise DataError(
                f"{where(data.report)}the {ROLES[role]} split ({role}) is empty: "
                f"{why_empty(data.report, role)}"
            )


def where(report: dict[str, Any]) -> str:
    files = report.get("files") or {}
    path = (files.get("log") or files.get("train") or {}).get("path")
    return f"{path}: " if path else ""


def why_empty(report: dict[str, Any], role: str) -> str:
    """The report step that left `role` without rows, and what to change."""
    steps = report.get("steps") or []
    for s in reversed(steps):
        if s.get("file") == role and "rows_in" in s and s["rows_removed"] and not s["rows_out"]:
            return f"step {s['step']!r} removed its last {s['rows_removed']} rows ({s['reason']})"
    split = next((s for s in steps if s["step"] == "split"), None)
    if split is not None:
        method = split.get("method", "?")
        facts = ", ".join(
            f"{k}={v}" for k, v in split.items()
            if k not in ("step", "file", "rows_removed", "method", "train", "valid", "test")
        )  # fmt: skip
        hint = HINTS.get(method, "").format(role=role)
        return f"step 'split' ({method}: {facts}) gave it 0 rows; {hint}"
    carve = next((s for s in steps if s["step"] == "carve_validation"), None)
    if role == "valid" and carve is not None:
        return (
            f"step 'carve_validation' moved {carve['rows_moved']} rows out of train "
            f"(fraction={carve['fraction']}); give data.valid or raise split.valid_fraction"
        )
    return f"data source {report.get('source', '?')!r} gave it no rows"
