"""An empty validation or test split is a DataError at load time, naming the split and the data
report step that emptied it, before any model or Trainer exists (Lightning used to fail inside
fit, or after training had finished)."""

from __future__ import annotations

import pytest

from recsys.data.datamodule import InteractionDataModule
from recsys.data.sources.interaction_log import InteractionLogSource
from recsys.errors import DataError
from recsys.train import train
from tests.bad_input_support import COLUMNS, GOOD, HEADER, write
from tests.conftest import compose_config

# 12 users x 8 items, distinct timestamps: every default split gives valid and test rows.
WIDE = "".join(
    f"u{u},i{i},{1 + (u + i) % 5},{1000 + 100 * u + i}\n" for u in range(12) for i in range(8)
)


def load(path, **kwargs):
    kwargs.setdefault("columns", COLUMNS)
    return InteractionDataModule(InteractionLogSource(path=str(path), **kwargs)).load()


def test_a_log_with_enough_rows_loads(tmp_path):
    data = load(write(tmp_path, HEADER + WIDE))
    assert len(data.valid) > 0 and len(data.test) > 0


@pytest.mark.parametrize(
    ("text", "split", "message"),
    [
        (HEADER + "u1,i1,3,1\nu1,i2,3,2\n", {}, r"validation split \(valid\) is empty: step 'split' \(random"),
        (HEADER + WIDE, {"test_fraction": 0}, r"test split \(test\) is empty: step 'split' \(random: .*test_fraction=0"),
        (HEADER + "u1,i1,3,1\nu1,i2,3,2\n", {"method": "leave_last_n"}, r"validation split \(valid\) is empty: step 'split' \(leave_last_n: .*users_kept_whole_in_train=1"),
        (HEADER + WIDE, {"method": "temporal", "cutoff": 10**9}, r"test split \(test\) is empty: step 'split' \(temporal: cutoff=1000000000"),
        (HEADER + GOOD, {"method": "leave_last_n"}, r"validation split \(valid\) is empty: step 'drop_unknown_ids' removed its last 6 rows"),
    ],
    ids=["tiny_file", "test_fraction_0", "single_user", "cutoff_after_all_data", "all_valid_items_unknown"],
)  # fmt: skip
def test_empty_split_names_the_split_and_the_step(tmp_path, text, split, message):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=f"^{path}: the {message}"):
        load(path, split=split)


def test_presplit_test_file_of_unknown_users_names_the_step(tmp_path):
    train_file = write(tmp_path, HEADER + WIDE, "train.csv")
    test_file = write(tmp_path, HEADER + "stranger,i1,3,1\nnobody,i2,3,1\n", "test.csv")
    source = InteractionLogSource(train=str(train_file), test=str(test_file), columns=COLUMNS)
    with pytest.raises(DataError, match=r"test split \(test\) is empty: step 'drop_unknown_ids'"):
        InteractionDataModule(source).load()


def test_train_stops_before_building_a_trainer(tmp_path):
    path = write(tmp_path, HEADER + WIDE)
    cfg = compose_config(
        ["data=interactions", f"data.path={path}", "data.columns.rating=rating",
         "data.split.test_fraction=0", "trainer.accelerator=cpu"],
        tmp_path / "run",
    )  # fmt: skip
    with pytest.raises(DataError, match=r"test split \(test\) is empty"):
        train(cfg)
    assert not (tmp_path / "run" / "checkpoints").exists()
