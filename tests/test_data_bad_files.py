"""Must-show 4, the bad-input corpus, whole files and columns: a missing, empty, header-only,
unreadable, damaged or mis-encoded file, a directory, a Parquet column of lists, or a missing column
is one clear DataError naming the file (and the columns, line or encoding at fault);
on the command line, one line and exit code 2. Rows: test_data_bad_rows.py; labels:
test_data_bad_labels.py."""

from __future__ import annotations

import datetime as dt
import gzip
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys.data.sources.interaction_log import InteractionLogSource
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


def test_truncated_or_mislabelled_gzip_is_one_line(tmp_path):
    whole = gzip.compress((HEADER + GOOD).encode())
    for name, data in [("cut.csv.gz", whole[:60]), ("plain.csv.gz", (HEADER + GOOD).encode())]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError, match=f"^{path}: cannot read as csv text"):
            load(path)


def test_zip_with_two_members_is_one_line(tmp_path):
    path = tmp_path / "log.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", HEADER + GOOD)
        archive.writestr("b.csv", HEADER + GOOD)
    with pytest.raises(DataError, match=f"^{path}: .*Multiple files found in ZIP"):
        load(path)


def test_directory_or_partitioned_parquet_asks_for_one_file(tmp_path):
    folder = tmp_path / "events"
    folder.mkdir()
    pd.DataFrame({"user": ["a"], "item": ["b"]}).to_parquet(folder / "part-0.parquet")
    with pytest.raises(DataError, match=f"^{folder}: is a directory; give one file"):
        load(folder, columns={"user": "user", "item": "item"})


def test_unreadable_file_is_one_line(tmp_path, monkeypatch):
    """Tests run as root, which reads anything: the refusal is simulated where the file opens."""
    path = write(tmp_path, HEADER + GOOD)
    real_open = Path.open

    def refuse(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(DataError, match=f"^{path}: cannot open \\(Permission denied\\)$"):
        load(path)


@pytest.mark.parametrize("kind", ["list", "struct"])
def test_parquet_list_or_struct_ids_are_refused_by_column(tmp_path, kind):
    users = [["u1"], ["u2"]] if kind == "list" else [{"id": "u1"}, {"id": "u2"}]
    path = tmp_path / "log.parquet"
    pq.write_table(pa.table({"user": users, "item": ["a", "b"]}), path)
    with pytest.raises(DataError, match=f"^{path}: column 'user' holds {kind}"):
        load(path, columns={"user": "user", "item": "item"})


@pytest.mark.parametrize("kind", ["string", "date32"])
def test_parquet_dates_as_strings_or_date32_are_timestamps(tmp_path, kind):
    days = [dt.date(2020, 1, 1 + k % 28) for k in range(30)]
    stamps = [d.isoformat() for d in days] if kind == "string" else pa.array(days, pa.date32())
    users = [f"u{k % 6}" for k in range(30)]
    path = tmp_path / "log.parquet"
    pq.write_table(
        pa.table({"user": users, "item": [f"i{k}" for k in range(30)], "ts": stamps}), path
    )
    data = InteractionLogSource(
        path=str(path), columns={"user": "user", "item": "item", "timestamp": "ts"},
        split={"method": "random", "valid_fraction": 0, "test_fraction": 0},
    )()  # fmt: skip
    expected = sorted(
        int(dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp()) for d in days
    )
    assert sorted(data.train.timestamps.tolist()) == expected


def test_binary_garbage_and_mixed_encodings_name_the_encoding(tmp_path):
    for name, data in [
        ("garbage.csv", bytes(range(128, 256)) * 8),
        ("mixed.csv", (HEADER + GOOD).encode() + "ué,i1,3,4\n".encode("latin-1")),
    ]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(
            DataError, match=f"^{path}: cannot read as .*not utf-8 text.*data.encoding"
        ):
            load(path)


def test_wrong_delimiter_says_which_it_seems_to_be(tmp_path):
    path = write(tmp_path, (HEADER + GOOD).replace(",", ";"))
    with pytest.raises(DataError, match="seems to be ';'-separated: set data.sep$"):
        load(path)


def test_row_with_too_many_fields_names_its_line(tmp_path):
    path = write(tmp_path, HEADER + GOOD + "u1,Shoes, red,3,1234\n")
    with pytest.raises(DataError, match=f"^{path}: line 32 has 5 fields, the first row 4") as err:
        load(path)
    assert str(err.value).endswith("set cleaning.on_invalid: drop to drop and count such rows")


@pytest.mark.parametrize("cleaning", [{}, {"on_invalid": "drop"}])
def test_first_row_with_an_extra_field_is_refused_not_shifted(tmp_path, cleaning):
    # pandas would take the first column as row labels and shift every row's ids silently
    path = write(tmp_path, "user,item\nu1,i1,x\nu2,i2\n")
    with pytest.raises(DataError, match=f"^{path}: line 2 has 3 fields, the header 2"):
        load(path, columns={"user": "user", "item": "item"}, cleaning=cleaning)


def test_byte_order_mark_and_crlf_read_the_same(tmp_path):
    plain = load(write(tmp_path, HEADER + GOOD, "plain.csv"))
    marked = tmp_path / "bom.csv"
    marked.write_bytes(("\ufeff" + HEADER + GOOD).replace("\n", "\r\n").encode())
    assert load(marked)["rows_kept"] == plain["rows_kept"]
