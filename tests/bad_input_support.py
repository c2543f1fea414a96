"""Shared by the bad-input tests (test_data_bad_files/rows/labels.py): a small good log, loading it
with the counts checked to add up, and finding a step of the data report."""

from __future__ import annotations

from pathlib import Path

from recsys.data.sources.interaction_log import InteractionLogSource

HEADER = "user,item,rating,timestamp\n"
GOOD = "".join(
    f"u{u},i{i},{1 + (u + i) % 5},{1000 + 10 * u + i}\n" for u in range(6) for i in range(5)
)
COLUMNS = {"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp"}


def load(path: Path, **kwargs) -> dict:
    kwargs.setdefault("columns", COLUMNS)
    kwargs.setdefault("split", {"method": "leave_last_n"})
    data = InteractionLogSource(path=str(path), **kwargs)()
    report = data.report
    assert report["rows_read"] == report["rows_removed"] + report["rows_kept"]["total"]
    assert report["rows_kept"]["total"] == len(data.train) + len(data.valid) + len(data.test)
    return report


def step(report: dict, name: str, file: str = "log") -> dict:
    return next(s for s in report["steps"] if s["step"] == name and s["file"] == file)


def write(tmp_path: Path, text: str, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
