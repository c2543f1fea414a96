"""Must-show 4, the bad-input corpus, whole files and columns: a missing, empty, header-only or
unreadable file, or a missing column, is one clear DataError naming the file (and the columns found);
on the command line, one line and exit code 2. Rows: test_data_bad_rows.py; labels:
test_data_bad_labels.py."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from recsys.errors import DataError
from tests.bad_input_support import COLUMNS, GOOD, HEADER, load, write
from tests.conftest import ROOT


def test_file_that_does_not_exist(tmp_path):
    with pytest.raises(DataError, match=f"^{tmp_path / 'nope.csv'}: file not found$"):
        load(tmp_path / "nope.csv")


def test_empty_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(DataError, match=f"^{path}: file is empty$"):
        load(path)


def test_header_only_file(tmp_path):
    path = write(tmp_path, HEADER)
    with pytest.raises(DataError, match=f"^{path}: no data rows"):
        load(path)


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, HEADER + GOOD)
    with pytest.raises(DataError) as err:
        load(path, columns={**COLUMNS, "rating": "stars"})
    assert str(err.value) == (
        f"{path}: column 'stars' (columns.rating) not found; columns found: user, item, rating, timestamp"
    )


def test_parquet_missing_column_lists_columns(tmp_path):
    path = tmp_path / "log.parquet"
    pd.DataFrame({"customer": ["a"], "sku": ["b"]}).to_parquet(path)
    with pytest.raises(DataError, match="columns found: customer, sku"):
        load(path, columns={"user": "customer", "item": "item"})


def test_unreadable_parquet(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    with pytest.raises(DataError, match=f"^{path}: cannot read as Parquet"):
        load(path)


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, HEADER + GOOD)
    cmd = [sys.executable, str(ROOT / "scripts" / "train.py"), "data=interactions", f"data.path={path}",
           "data.columns.item=product", f"hydra.run.dir={tmp_path / 'run'}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert (
        f"error: {path}: column 'product' (columns.item) not found; columns found: user, item"
        in proc.stderr
    )
    assert "Traceback" not in proc.stderr
