"""Data cases, part 1: ids (NA-like words, line breaks and other separators), non-finite values,
compressions, damaged and mis-encoded text, Parquet schema problems. Part 2 (splits, pre-split
files, side features, labels): cases_data_splits.py."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import io
import lzma
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa

from tests.bad_inputs.data_helpers import (
    GOOD,
    HEADER,
    ROWS,
    expect,
    frame_csv,
    good_columns,
    load,
    write_parquet,
    write_text,
)
from tests.bad_inputs.harness import Case

N = len(ROWS)  # an appended row is row N + 1, on line N + 2
NA_LIKE = {
    "NA": "NA", "N_A": "N/A", "None": "None", "null": "null", "nan": "nan", "NaN": "NaN",
    "hash_NA": "#N/A", "minus_nan": "-nan", "NULL": "NULL", "n_a": "n/a", "QNAN": "1.#QNAN",
    "space": " ", "pd_NA": "<NA>",
}  # fmt: skip
LINE_BREAKS = {"lf": "\n", "cr": "\r", "crlf": "\r\n"}
KEPT_SEPARATORS = {
    "u2028": "\u2028", "u2029": "\u2029", "nel": "\x85", "ff": "\x0c", "vt": "\x0b",
    "fs": "\x1c", "gs": "\x1d", "rs": "\x1e", "tab": "\t",
}  # fmt: skip
NON_FINITE = {
    "rating": ["inf", "-inf", "nan", "1e999", "1e39"],
    "timestamp": ["inf", "nan", "1e999", "1e19", "-1e19"],
}


def _with_row(tmp: Path, fmt: str, user, item, rating=3, timestamp=99_999) -> Path:
    if fmt == "parquet":
        return write_parquet(tmp, good_columns([(user, item, rating, timestamp)]))
    frame = pd.DataFrame(good_columns([(user, item, rating, timestamp)]))
    return frame_csv(frame, tmp / "log.csv")


def id_cases() -> list[Case]:
    cases = []
    for name, word in NA_LIKE.items():
        for fmt in ("csv", "parquet"):
            cases.append(Case(
                f"na_like_id_{name}_{fmt}", "data", expect="ok",
                run=lambda tmp, w=word, f=fmt: load(_with_row(tmp, f, w, w)),
                check=expect(N + 1, users={word}, items={word}),
            ))  # fmt: skip
    for name, end in LINE_BREAKS.items():
        for fmt in ("csv", "parquet"):
            cases.append(Case(
                f"line_break_id_{name}_{fmt}", "data", expect="ok",
                run=lambda tmp, e=end, f=fmt: load(_with_row(tmp, f, f"a{e}b", "i0")),
                check=expect(N + 1, {"drop_line_break_ids": 1}),
            ))  # fmt: skip
    for name, sep in KEPT_SEPARATORS.items():
        for fmt in ("csv", "parquet"):
            cases.append(Case(
                f"separator_in_id_{name}_{fmt}", "data", expect="ok",
                run=lambda tmp, s=sep, f=fmt: load(_with_row(tmp, f, f"a{s}b", f"i{s}")),
                check=expect(N + 1, users={f"a{sep}b"}, items={f"i{sep}"}),
            ))  # fmt: skip
    return cases


def value_cases() -> list[Case]:
    cases = []
    for column, values in NON_FINITE.items():
        for value in values:
            row = {"rating": 3, "timestamp": 99_999, column: value}
            text = HEADER + GOOD + f"u0,i9,{row['rating']},{row['timestamp']}\n"
            cases.append(Case(
                f"non_finite_{column}_{value}", "data",
                run=lambda tmp, t=text: load(write_text(tmp, t)),
                names=f"row {N + 1}, column '{column}'",
            ))  # fmt: skip
            cases.append(Case(
                f"non_finite_{column}_{value}_dropped", "data", expect="ok",
                run=lambda tmp, t=text: load(write_text(tmp, t), cleaning={"on_invalid": "drop"}),
                check=expect(N + 1, {"drop_invalid_values": 1}),
            ))  # fmt: skip
    for column, value in (("rating", float("inf")), ("timestamp", 1e19), ("rating", 1e39)):
        row = {"rating": 3.0, "timestamp": 99_999.0, column: value}
        cases.append(Case(
            f"parquet_non_finite_{column}_{value:g}", "data",
            run=lambda tmp, r=row: load(write_parquet(tmp, good_columns([("u0", "i9", r["rating"], r["timestamp"])]))),
            names=f"row {N + 1}, column '{column}'",
        ))  # fmt: skip
    return cases


def _zip(members: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for k in range(members):
            archive.writestr(f"part{k}.csv", HEADER + GOOD)
    return buffer.getvalue()


def compression_cases() -> list[Case]:
    plain = (HEADER + GOOD).encode()
    good = {
        "gz": gzip.compress(plain), "bz2": bz2.compress(plain), "zip": _zip(1), "xz": lzma.compress(plain),
    }  # fmt: skip
    cases = [
        Case(f"compressed_{ext}", "data", expect="ok", check=expect(N),
             run=lambda tmp, e=ext, d=data: load(write_text(tmp, d, f"log.csv.{e}")))
        for ext, data in good.items()
    ]  # fmt: skip
    bad = {
        "truncated_gz": ("gz", good["gz"][:50]),
        "mislabelled_gz": ("gz", plain),
        "truncated_bz2": ("bz2", good["bz2"][:50]),
        "truncated_xz": ("xz", good["xz"][:50]),
        "two_member_zip": ("zip", _zip(2)),
        "not_a_zip": ("zip", plain),
    }
    for name, (ext, data) in bad.items():
        cases.append(Case(
            f"compressed_{name}", "data", names=f"log.csv.{ext}",
            run=lambda tmp, e=ext, d=data: load(write_text(tmp, d, f"log.csv.{e}")),
        ))  # fmt: skip
    return cases


def text_cases() -> list[Case]:
    lines = GOOD.splitlines(keepends=True)
    errors = {
        "empty_file": ("", "file is empty"),
        "header_only": (HEADER, "no data rows"),
        "semicolons": ((HEADER + GOOD).replace(",", ";"), "';'-separated: set data.sep"),
        "tabs_in_csv": ((HEADER + GOOD).replace(",", "\t"), r"'\t'-separated: set data.sep"),
        "pipes_in_csv": ((HEADER + GOOD).replace(",", "|"), "'|'-separated: set data.sep"),
        "binary_garbage": (bytes(range(128, 256)) * 4, "data.encoding"),
        "latin1_row": ((HEADER + GOOD).encode() + "ué,i1,3,4\n".encode("latin-1"), "data.encoding"),
        "utf16": ((HEADER + GOOD).encode("utf-16"), "log.csv"),
        "extra_field": (HEADER + GOOD + "u0,Shoes, red,3,4\n", f"line {N + 2} has 5 fields"),
        "short_row": (HEADER + GOOD + "u0,i9\n", f"row {N + 1}, column 'rating'"),
        "missing_id_kept_strict": (HEADER + GOOD + ",i9,3,4\n", f"row {N + 1}, column 'user'"),
    }
    cases = [
        Case(f"text_{name}", "data", names=names,
             run=lambda tmp, t=text, n=name: load(write_text(tmp, t), cleaning={"drop_missing_ids": "strict" not in n}))
        for name, (text, names) in errors.items()
    ]  # fmt: skip
    oks = {
        "bom": (("\ufeff" + HEADER + GOOD).encode(), {}, {}),
        "crlf": ((HEADER + GOOD).replace("\n", "\r\n"), {}, {}),
        "blank_lines": (
            HEADER + "".join(lines[:3]) + "\n" + "".join(lines[3:]) + "\n",
            {"drop_blank_rows": 2},
            {},
        ),
        "separator_only_row": (HEADER + GOOD + ",,,\n", {"drop_blank_rows": 1}, {}),
        "quoted_comma_id": (HEADER + GOOD + '"a,b",i0,3,4\n', {}, {"users": {"a,b"}}),
        "missing_id": (HEADER + GOOD + ",i0,3,4\nu0,,3,4\n", {"drop_missing_ids": 2}, {}),
        "leading_zeros": (
            HEADER + GOOD + "007,7,3,4\n7,007,3,4\n",
            {},
            {"users": {"007", "7"}, "items": {"7", "007"}},
        ),
        "spaces_kept": (HEADER + GOOD + " u0,i0 ,3,4\n", {}, {"users": {" u0"}, "items": {"i0 "}}),
    }
    for name, (text, removed, ids) in oks.items():
        decoded = text if isinstance(text, str) else text.decode("utf-8-sig")
        rows = len(decoded.splitlines()) - 1  # every line but the header is a row
        cases.append(Case(
            f"text_{name}", "data", expect="ok", run=lambda tmp, t=text: load(write_text(tmp, t)),
            check=expect(rows, removed, **ids),
        ))  # fmt: skip
    cases += [
        Case("text_short_row_dropped", "data", expect="ok", check=expect(N + 1, {"drop_invalid_values": 1}),
             run=lambda tmp: load(write_text(tmp, HEADER + GOOD + "u0,i9\n"), cleaning={"on_invalid": "drop"})),
        Case("text_latin1_declared", "data", expect="ok", check=expect(N + 1, users={"ué"}),
             run=lambda tmp: load(write_text(tmp, (HEADER + GOOD + "ué,i1,3,4\n").encode("latin-1")), encoding="latin-1")),
        Case("text_missing_column", "data", names="column 'stars' (columns.rating) not found",
             run=lambda tmp: load(write_text(tmp, HEADER + GOOD), columns={"user": "user", "item": "item", "rating": "stars"})),
        Case("text_directory", "data", names="is a directory", run=lambda tmp: load(tmp)),
        Case("text_no_such_file", "data", names="nope.csv: file not found", run=lambda tmp: load(tmp / "nope.csv")),
        Case("text_unknown_extension", "data", names="log.events: cannot tell the format",
             run=lambda tmp: load(write_text(tmp, HEADER + GOOD, "log.events"))),
    ]  # fmt: skip
    return cases


def parquet_cases() -> list[Case]:
    users, items = [r[0] for r in ROWS], [r[1] for r in ROWS]
    days = [dt.date(2020, 1, 1 + k % 28) for k in range(N)]
    stamps = [dt.datetime(2020, 1, 1 + k % 28, 12) for k in range(N)]
    tz = pa.array(stamps, pa.timestamp("s", tz="Europe/Paris"))
    schema_errors = {
        "list_ids": ({"user": [[u] for u in users], "item": items}, "column 'user' holds list"),
        "struct_ids": (
            {"user": [{"id": u} for u in users], "item": items},
            "column 'user' holds struct",
        ),
        "map_ids": (
            {
                "user": pa.array([[(u, 1)] for u in users], pa.map_(pa.string(), pa.int64())),
                "item": items,
            },
            "column 'user' holds map",
        ),
        "list_item_ids": (
            {"user": users, "item": [[i, i] for i in items]},
            "column 'item' holds list",
        ),
        "no_rows": (
            {"user": pa.array([], pa.string()), "item": pa.array([], pa.string())},
            "no data rows",
        ),
        "missing_column": ({"customer": users, "item": items}, "columns found: customer, item"),
    }
    cases = [
        Case(f"parquet_{name}", "data", names=names,
             run=lambda tmp, c=cols: load(write_parquet(tmp, c), columns={"user": "user", "item": "item"}))
        for name, (cols, names) in schema_errors.items()
    ]  # fmt: skip
    cases.append(Case(
        "parquet_list_ratings", "data", names="column 'rating' holds list",
        run=lambda tmp: load(write_parquet(tmp, {"user": users, "item": items, "rating": [[1]] * N}), columns={"user": "user", "item": "item", "rating": "rating"}),
    ))  # fmt: skip
    cases.append(Case(
        "parquet_not_parquet", "data", names="cannot read as Parquet",
        run=lambda tmp: load(write_text(tmp, b"PAR1 not really", "log.parquet")),
    ))  # fmt: skip
    timestamps = {
        "date_strings": [d.isoformat() for d in days],
        "date32": pa.array(days, pa.date32()),
        "timestamp": pa.array(stamps, pa.timestamp("ns")),
        "timestamp_tz": tz,
        "datetime_strings": [s.isoformat() for s in stamps],
    }
    for name, ts in timestamps.items():
        cases.append(Case(
            f"parquet_{name}", "data", expect="ok", check=expect(N, users=set(users)),
            run=lambda tmp, t=ts: load(write_parquet(tmp, {"user": users, "item": items, "ts": t}), columns={"user": "user", "item": "item", "timestamp": "ts"}),
        ))  # fmt: skip
    id_columns = {
        "binary_ids": (pa.array([u.encode() for u in users], pa.binary()), {}, set(users)),
        "dictionary_ids": (pa.array(users).dictionary_encode(), {}, set(users)),
        "int_ids": (pa.array(range(N), pa.int64()), {}, {"0", str(N - 1)}),
        "float_ids_with_null": (pa.array([float(k) for k in range(N - 1)] + [None]), {"drop_missing_ids": 1}, {"0", "1"}),
        "null_and_empty_ids": (pa.array(users[:-2] + [None, ""]), {"drop_missing_ids": 2}, set(users[:-2])),
    }  # fmt: skip
    for name, (column, removed, expected) in id_columns.items():
        cases.append(Case(
            f"parquet_{name}", "data", expect="ok", check=expect(N, removed, users=expected),
            run=lambda tmp, c=column: load(write_parquet(tmp, {"user": c, "item": items}), columns={"user": "user", "item": "item"}),
        ))  # fmt: skip
    return cases


def cases() -> list[Case]:
    return [*id_cases(), *value_cases(), *compression_cases(), *text_cases(), *parquet_cases()]
