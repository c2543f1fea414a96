"""Data cases, part 2: empty validation/test splits (refused at load, naming the split and the
report step), pre-split `user item 1` files with bad lines, rows with extra fields dropped and counted
(`on_invalid: drop`), side-feature files with bad rows, and the report after label down-sampling.
Part 1: cases_data.py."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.data.sources.interaction_log import InteractionLogSource
from tests.bad_inputs.data_helpers import (
    GOOD,
    HEADER,
    ROWS,
    adds_up,
    load,
    load_for_training,
    removed_by,
    write_parquet,
    write_text,
)
from tests.bad_inputs.harness import Case

N = len(ROWS)
TWO_ROWS = HEADER + "u1,i1,3,1\nu1,i2,3,2\n"


# Every pair of GOOD but (u, i) with u + i divisible by 6: those are known ids, yet unseen pairs.
TRAIN = "".join(f"{u},{i},{r},{t}\n" for u, i, r, t in ROWS if (int(u[1:]) + int(i[1:])) % 6)


def _presplit_files(tmp: Path, valid: str | None, test: str) -> dict[str, str]:
    paths = {"train": str(write_text(tmp, HEADER + TRAIN, "train.csv"))}
    if valid is not None:
        paths["valid"] = str(write_text(tmp, HEADER + valid, "valid.csv"))
    paths["test"] = str(write_text(tmp, HEADER + test, "test.csv"))
    return paths


def split_cases() -> list[Case]:
    on_log = {
        "tiny_file": (TWO_ROWS, {}, "validation split (valid) is empty: step 'split'"),
        "test_fraction_0": (HEADER + GOOD, {"test_fraction": 0}, "test split (test) is empty: step 'split'"),
        "valid_fraction_0": (HEADER + GOOD, {"valid_fraction": 0}, "validation split (valid) is empty: step 'split'"),
        "single_user": (TWO_ROWS, {"method": "leave_last_n"}, "users_kept_whole_in_train=1"),
        "cutoff_after_all_data": (HEADER + GOOD, {"method": "temporal", "cutoff": 10**9}, "test split (test) is empty"),
        "cutoff_before_all_data": (HEADER + GOOD, {"method": "temporal", "cutoff": 0, "valid_cutoff": 0}, "no training rows left"),
        "valid_cutoff_equals_cutoff": (HEADER + GOOD, {"method": "temporal", "cutoff": 1500, "valid_cutoff": 1500}, "validation split (valid) is empty"),
        "last_items_unknown": (HEADER + "".join(f"u{u},i{i},3,{i}\n" for u in range(5) for i in range(4)), {"method": "leave_last_n"}, "step 'drop_unknown_ids' removed its last"),
    }  # fmt: skip
    cases = [
        Case(f"split_{name}", "data", names=names,
             run=lambda tmp, t=text, s=split: load_for_training(write_text(tmp, t), split=s))
        for name, (text, split, names) in on_log.items()
    ]  # fmt: skip
    presplit = {
        "test_users_all_unknown": ("u0,i0,3,1\n", "stranger,i1,3,1\nnobody,i2,3,1\n", {}, "test split (test) is empty: step 'drop_unknown_ids'"),
        "valid_items_all_unknown": ("u0,new,3,1\n", "u1,i5,3,1\n", {}, "validation split (valid) is empty: step 'drop_unknown_ids'"),
        "valid_pairs_all_seen": ("u0,i1,3,1\nu1,i2,3,1\n", "u1,i5,3,1\n", {}, "step 'drop_seen_pairs' removed its last 2"),
        "no_valid_file_fraction_0": (None, "u1,i5,3,1\n", {"valid_fraction": 0}, "step 'carve_validation' moved 0 rows"),
    }  # fmt: skip
    for name, (valid, test, split, names) in presplit.items():
        cases.append(Case(
            f"split_presplit_{name}", "data", names=names,
            run=lambda tmp, v=valid, t=test, s=split: load_for_training(**_presplit_files(tmp, v, t), split=s),
        ))  # fmt: skip
    # each user's items in a rotated time order: the last ones differ by user, all occur earlier
    wide = HEADER + "".join(
        f"u{u},i{i},3,{100 * ((i + u) % 8) + u}\n" for u in range(12) for i in range(8)
    )
    for method in ("random", "leave_last_n", "temporal"):
        cases.append(Case(
            f"split_{method}_enough_rows", "data", expect="ok",
            run=lambda tmp, m=method: load_for_training(write_text(tmp, wide), split={"method": m}),
            check=lambda data, tmp: (adds_up(data.report), _all_splits_filled(data)),
        ))  # fmt: skip
    return cases


def _all_splits_filled(data) -> None:
    assert min(len(data.train), len(data.valid), len(data.test)) > 0, data.report["rows_kept"]


BEAUTY = {"format": "whitespace", "header": False, "columns": {"user": 0, "item": 1, "rating": 2}}
TRAIN_LINES = "".join(f"{u} {i} 1\n" for u in range(6) for i in range(5) if (u + i) % 5)


def _beauty(tmp: Path, broken: str, line: str) -> dict:
    """Amazon-Beauty layout; `broken` (train/valid/test) gets `line` as its second line."""
    texts = {"train": TRAIN_LINES, "valid": "0 0 1\n1 4 1\n", "test": "2 3 1\n3 2 1\n"}
    first, *rest = texts[broken].splitlines(keepends=True)
    texts[broken] = first + line + "".join(rest)
    paths = {n: str(write_text(tmp, t, f"{n}.txt")) for n, t in texts.items()}
    return {**paths, **BEAUTY}


def presplit_cases() -> list[Case]:
    bad = {
        "bad_value": ("0 4 x\n", "row 2, column 2 (rating): 'x' is not a number"),
        "extra_field": ("0 4 1 extra\n", "line 2 has 4 fields"),
        "non_finite": ("0 4 inf\n", "row 2, column 2 (rating): 'inf' is not a finite"),
    }
    cases = []
    for name, (line, message) in bad.items():
        for broken in ("train", "valid", "test"):
            cases.append(Case(
                f"presplit_{broken}_{name}", "data", names=f"{broken}.txt: {message}",
                run=lambda tmp, b=broken, ln=line: InteractionLogSource(**_beauty(tmp, b, ln))(),
            ))  # fmt: skip
    for broken in ("valid", "test"):
        cases.append(Case(
            f"presplit_{broken}_short_blank_and_new_lines", "data", expect="ok",
            run=lambda tmp, b=broken: InteractionLogSource(**_beauty(tmp, b, "5\n\n77 1 1\n0 77 1\n"))(),
            check=lambda data, tmp, b=broken: _presplit_counts(data, b),
        ))  # fmt: skip
    return cases


def extra_field_cases() -> list[Case]:
    """`on_invalid: drop`: each row with more fields than the first is one counted drop at its row."""
    drop = {"on_invalid": "drop"}
    logs = {  # name: (text, rows read, rows with extra fields, other drops)
        "one_row": (HEADER + GOOD + "u0,Shoes, red,3,4\n", N + 1, [N + 1], {}),
        "scattered_with_blank_and_bad_value": (
            HEADER + "u9,i0,3,1\nu0,i1,3,1,x\n" + GOOD + "\nu9,i9,3,1,x,y\nu9,i8,x,1\n",
            N + 5, [2, N + 4], {"drop_blank_rows": 1, "drop_invalid_values": 1},
        ),
        "last_rows": (HEADER + GOOD + "u0,i9,3,1,x\nu1,i9,3,1,x\n", N + 2, [N + 1, N + 2], {}),
        "after_quoted_line_break": (
            HEADER + GOOD + '"u\nv",i0,3,4\nu1,i0,3,4,5\n', N + 2, [N + 2], {"drop_line_break_ids": 1},
        ),
    }  # fmt: skip
    cases = [
        Case(f"extra_fields_dropped_{name}", "data", expect="ok",
             run=lambda tmp, t=text: load(write_text(tmp, t), cleaning=drop),
             check=lambda data, tmp, n=read, r=rows, o=other: _extra_counted(data, "log", r, n, o))
        for name, (text, read, rows, other) in logs.items()
    ]  # fmt: skip
    for broken in ("train", "test"):
        cases.append(Case(
            f"extra_fields_dropped_presplit_{broken}", "data", expect="ok",
            run=lambda tmp, b=broken: InteractionLogSource(**_beauty(tmp, b, "0 4 1 extra\n"), cleaning=drop)(),
            check=lambda data, tmp, b=broken: _extra_counted(data, b, [2]),
        ))  # fmt: skip
    return cases


def _extra_counted(data, role: str, rows: list[int], rows_read=None, other=None) -> None:
    adds_up(data.report)
    steps = data.report["steps"]
    step = next(s for s in steps if s["step"] == "drop_extra_field_rows" and s["file"] == role)
    assert (step["rows_removed"], step["example_rows"]) == (len(rows), rows), step
    if rows_read is not None:
        assert data.report["rows_read"] == rows_read, data.report["rows_read"]
        expected = {"drop_extra_field_rows": len(rows), **other}
        assert data.report["rows_removed_by_step"] == expected, data.report["rows_removed_by_step"]


def _presplit_counts(data, broken: str) -> None:
    adds_up(data.report)
    counted = {
        (s["step"], s["file"]): s["rows_removed"]
        for s in data.report["steps"]
        if s.get("rows_removed")
    }
    assert counted == {
        ("drop_missing_ids", broken): 1,  # "5": no item
        ("drop_blank_rows", broken): 1,
        ("drop_unknown_ids", broken): 2,  # user 77, item 77: only in this file
    }, counted


def _features(tmp: Path, text: str | bytes | None = None, name: str = "items.csv", **spec):
    path = write_text(tmp, text, name) if text is not None else tmp / name
    spec = {"path": str(path), "id": "item", **spec}
    return load(write_text(tmp, HEADER + GOOD + "u0,NA,3,1\n"), item_features=spec)


def feature_cases() -> list[Case]:
    rows = "".join(f"i{i},t{i % 2},{i}\n" for i in range(6))
    ok = {
        "na_like_id": ("item,tag,n\n" + rows + "NA,t0,1\n", {}, {"rows_not_in_vocabulary": 0, "items_without_row": 0}),
        "blank_row": ("item,tag,n\n" + rows + "\n", {}, {"rows_without_id": 1, "items_without_row": 1}),
        "duplicate_id": ("item,tag,n\n" + rows + "i0,t1,2\n", {}, {"rows_duplicate_id_ignored": 1}),
        "unknown_id": ("item,tag,n\n" + rows + "zzz,t1,2\n", {}, {"rows_not_in_vocabulary": 1}),
        "title_with_line_break": ("item,title\n" + '"NA","two\nlines"\n', {"title": "title"}, {"titles_line_breaks_replaced": 1}),
    }  # fmt: skip
    cases = []
    for name, (text, spec, facts) in ok.items():
        spec = spec or {"categorical": ["tag"], "numeric": ["n"]}
        cases.append(Case(
            f"features_{name}", "data", expect="ok",
            run=lambda tmp, t=text, s=spec: _features(tmp, t, **s),
            check=lambda data, tmp, f=facts: _feature_facts(data, f),
        ))  # fmt: skip
    errors = {
        "extra_field": ("item,tag,n\n" + rows + "i1,a,b,3\n", {}, "items.csv"),
        "not_a_number": ("item,tag,n\n" + rows + "NA,t0,many\n", {"numeric": ["n"]}, "column 'n': 'many' is not a number"),
        "missing_id_column": ("sku,tag\ni0,t0\n", {}, "column 'item' (columns.id) not found"),
        "empty_file": ("", {}, "items.csv: file is empty"),
        "mis_encoded": (b"item,tag\n" + "ié,t0\n".encode("latin-1"), {}, "data.encoding"),
    }  # fmt: skip
    for name, (text, spec, names) in errors.items():
        cases.append(Case(
            f"features_{name}", "data", names=names, run=lambda tmp, t=text, s=spec: _features(tmp, t, **s),
        ))  # fmt: skip
    cases.append(Case(
        "features_parquet_list_ids", "data", names="is a list or struct",
        run=lambda tmp: (write_parquet(tmp, {"item": [["i0"], ["i1"]], "n": [1, 2]}, "items.parquet"),
                         _features(tmp, None, "items.parquet"))[1],
    ))  # fmt: skip
    return cases


def _feature_facts(data, facts: dict) -> None:
    adds_up(data.report)
    found = data.report["item_features"]
    assert {k: found[k] for k in facts} == facts, found
    assert "NA" in set(data.item_ids.tolist())


def label_cases() -> list[Case]:
    frame = pd.DataFrame(
        {"user": [f"u{k % 20}" for k in range(200)], "item": [f"i{k // 20}" for k in range(200)],
         "converted": [int(k % 7 == 0) for k in range(200)]}
    )  # fmt: skip
    columns = {"user": "user", "item": "item", "label": "converted"}
    cases = []
    for rate in (0.2, 0.5, 1.0):
        cases.append(Case(
            f"labels_downsampled_{rate}", "data", expect="ok",
            run=lambda tmp, r=rate: load_for_training(
                _csv(frame, tmp), columns=columns, label_negative_keep_rate=r
            ),
            check=lambda data, tmp, r=rate: _downsampled(data, r),
        ))  # fmt: skip
    return cases


def _csv(frame: pd.DataFrame, tmp: Path) -> Path:
    frame.to_csv(tmp / "log.csv", index=False)
    return tmp / "log.csv"


def _downsampled(data, rate: float) -> None:
    report = data.report
    adds_up(report)
    assert report["rows_kept"]["train"] == len(data.train)
    assert report["rows_read"] == 200
    assert (removed_by(report, "downsample_label_negatives") > 0) == (rate < 1)


def cases() -> list[Case]:
    return [
        *split_cases(), *presplit_cases(), *extra_field_cases(), *feature_cases(), *label_cases()
    ]  # fmt: skip
