"""The data report: every file read, every step with rows in, rows removed and why, and a check
that the rows read equal the rows removed plus the rows in train/valid/test. Saved by `train` as
`data_report.json` and printed by `scripts/inspect_data.py`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

MAX_EXAMPLES = 5  # first file rows of each drop, to look them up


class DataReport:
    def __init__(self, source: str, **info: Any):
        self.source = source
        self.info = dict(info)
        self.files: dict[str, dict[str, Any]] = {}  # role (log/train/valid/test) -> file facts
        self.steps: list[dict[str, Any]] = []

    def read(self, role: str, path: str, rows: int, **facts: Any) -> None:
        self.files[role] = {"path": str(path), "rows_read": int(rows), **facts}
        self.steps.append({"step": "read", "file": role, "rows_out": int(rows), "path": str(path)})

    def drop(
        self,
        step: str,
        role: str,
        removed: np.ndarray,
        reason: str,
        rows: np.ndarray | None = None,
        **extra: Any,
    ) -> None:
        """Record a step that removed the rows where `removed` is True (possibly none)."""
        count = int(removed.sum())
        entry = {
            "step": step,
            "file": role,
            "rows_in": int(removed.shape[0]),
            "rows_removed": count,
            "rows_out": int(removed.shape[0]) - count,
            "reason": reason,
            **extra,
        }
        if count and rows is not None:
            entry["example_rows"] = [int(r) for r in rows[removed][:MAX_EXAMPLES]]
        self.steps.append(entry)
        if count:
            log.info(
                "%s [%s]: removed %d of %d rows (%s)", step, role, count, entry["rows_in"], reason
            )

    def note(self, step: str, role: str, **facts: Any) -> None:
        """A step that moves or relabels rows without removing any (splits, labels)."""
        self.steps.append({"step": step, "file": role, "rows_removed": 0, **facts})

    @property
    def rows_read(self) -> int:
        return sum(f["rows_read"] for f in self.files.values())

    @property
    def rows_removed(self) -> int:
        return sum(s.get("rows_removed", 0) for s in self.steps)

    def finish(self, splits: dict[str, int]) -> dict[str, Any]:
        """The report as a dict; raises if the counts do not add up (a bug, never the user's data)."""
        kept = sum(splits.values())
        if self.rows_read != self.rows_removed + kept:
            raise RuntimeError(
                f"data report does not add up: read {self.rows_read}, removed {self.rows_removed}, "
                f"kept {kept}; steps: {self.steps}"
            )
        removed_by: dict[str, int] = {}
        for s in self.steps:
            if s.get("rows_removed"):
                removed_by[s["step"]] = removed_by.get(s["step"], 0) + s["rows_removed"]
        return {
            "source": self.source,
            **self.info,
            "files": self.files,
            "steps": self.steps,
            "rows_read": self.rows_read,
            "rows_removed": self.rows_removed,
            "rows_removed_by_step": removed_by,
            "rows_kept": {**splits, "total": kept},
            "counts_add_up": True,
        }


def drop_after_finish(
    report: dict[str, Any],
    step: str,
    role: str,
    rows_in: int,
    removed: int,
    reason: str,
    **extra: Any,
) -> None:
    """Record in a finished report a drop made after loading (label down-sampling in the
    datamodule), keeping `rows_read = rows_removed + rows_kept` true."""
    report["steps"].append(
        {"step": step, "file": role, "rows_in": rows_in, "rows_removed": removed,
         "rows_out": rows_in - removed, "reason": reason, **extra}
    )  # fmt: skip
    if "rows_read" not in report:  # a source without counted files: the step is all there is
        return
    by_step = report.setdefault("rows_removed_by_step", {})
    if removed:
        by_step[step] = by_step.get(step, 0) + removed
    report["rows_removed"] += removed
    report["rows_kept"][role] -= removed
    report["rows_kept"]["total"] -= removed
    if report["rows_read"] != report["rows_removed"] + report["rows_kept"]["total"]:
        raise RuntimeError(f"data report does not add up after {step}: {report}")


def format_report(report: dict[str, Any], summary: dict[str, Any]) -> str:
    """Plain-text rendering: the summary, then one line per step."""
    lines = [f"data: {summary.get('name')} ({report.get('source', '?')})"]
    lines.append(
        f"  users {summary['users']:,}  items {summary['items']:,}  interactions "
        f"{summary['interactions']:,} (train {summary['train']:,} / valid {summary['valid']:,} / "
        f"test {summary['test']:,})  density {summary['density']:.5f}"
    )
    q = summary["train_per_user_quantiles"]
    lines.append("  train interactions per user: " + "  ".join(f"{k} {v:g}" for k, v in q.items()))
    for kind in ("user_features", "item_features"):
        if summary.get(kind):
            lines.append(f"  {kind.replace('_', ' ')}: {', '.join(summary[kind])}")
    steps = report.get("steps") or []
    if steps:
        lines.append("  steps:")
    for s in steps:
        if s["step"] == "read":
            lines.append(
                f"    read               [{s['file']}] {s['rows_out']:,} rows from {s['path']}"
            )
        elif "rows_in" in s:
            lines.append(
                f"    {s['step']:<18} [{s['file']}] {s['rows_in']:,} in, {s['rows_removed']:,} removed"
                + (f": {s['reason']}" if s["rows_removed"] else "")
            )
        else:
            facts = ", ".join(
                f"{k} {v}" for k, v in s.items() if k not in ("step", "file", "rows_removed")
            )
            lines.append(f"    {s['step']:<18} [{s['file']}] {facts}")
    if "rows_read" in report:
        kept = report.get("rows_kept", {})
        lines.append(
            f"  rows read {report['rows_read']:,} = removed {report['rows_removed']:,} + kept "
            f"{kept.get('total', 0):,}"
        )
    return "\n".join(lines)
