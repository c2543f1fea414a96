"""MovieLens-100K (Harper & Konstan, 2015) with its canonical u1..u5 splits and side features.

Every rating is a positive interaction for retrieval; `label_threshold` turns ratings into
conversions (rating >= 4) for the propensity head. Files come from `root`, else from
`data_dir/ml-100k` (RECSYS_DATA_DIR), else are downloaded from GroupLens into the cache on first use and checked against the sha256 of the published files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys.data.ingest.cleaning import drop_missing_ids
from recsys.data.ingest.features import categorical_codes
from recsys.data.ingest.log_table import read_log
from recsys.data.ingest.readers import read_delimited, to_int
from recsys.data.ingest.report import DataReport
from recsys.data.ingest.splits import carve_validation
from recsys.data.interactions import FeatureTable, InteractionData, Interactions
from recsys.data.sources.download import fetch_zip, local_copy
from recsys.errors import DataError

URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
CHECKSUMS = {
    "u.data": "6cfffb52c89b05fbc3afb75f6912eeda04c81c2add0dc58e773a0ef6c8adb160",
    "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "u1.base": "ce253ec86c448b44fb3ba9a30d12dcfc2e9210cbde71efada3730c22e9ac212a",
    "u1.test": "18c6014a4b2c7324f250a63f8904a7b16b2b19f911129e346141507b0cbac950",
}
GENRES = [
    "unknown", "action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama",
    "fantasy", "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western",
]  # fmt: skip
RATING_COLUMNS = {"user": 0, "item": 1, "rating": 2, "timestamp": 3}  # header-less, tab-separated
AGE_BUCKETS = [18, 25, 35, 45, 50, 56]  # the MovieLens-1M age groups


@dataclass
class MovieLens100K:
    root: str | None = None  # local folder; None = data_dir/ml-100k, else download into cache_dir
    cache_dir: str = "~/.cache/recsys"
    data_dir: str | None = field(default_factory=lambda: os.environ.get("RECSYS_DATA_DIR"))
    split: str = "u1"
    valid_fraction: float = 0.05
    label_threshold: float = 4.0  # rating >= this counts as a conversion
    seed: int = 0

    def folder(self) -> Path:
        if self.root is not None:
            folder = Path(self.root).expanduser()
            if not folder.is_dir():
                raise DataError(f"{folder}: data.root is not a directory")
            return folder
        local = local_copy(self.data_dir, "ml-100k", CHECKSUMS)
        if local is not None:
            return local
        looked_in = Path(self.data_dir).expanduser() / "ml-100k" if self.data_dir else None
        return fetch_zip(URL, Path(self.cache_dir), "ml-100k", CHECKSUMS, looked_in)

    def _ratings(
        self, path: Path, user_index: pd.Index, item_index: pd.Index, report: DataReport
    ) -> Interactions:
        """A u*.base / u*.test file through the generic reader; every id must be in u.user / u.item."""
        table = read_log(path, RATING_COLUMNS, "tsv", header=False, on_invalid="error")
        report.read(path.name, str(path), len(table), format="tsv")
        table = drop_missing_ids(table, report, path.name, enabled=False)
        users = user_index.get_indexer(table.user_ids)[table.user]
        items = item_index.get_indexer(table.item_ids)[table.item]
        unknown = (users < 0) | (items < 0)
        if unknown.any():
            row = int(table.rows[int(unknown.argmax())])
            raise DataError(f"{path}: row {row}: user or item id not in u.user / u.item")
        rating = table.values["rating"]
        return Interactions(
            torch.from_numpy(users.astype(np.int64)),
            torch.from_numpy(items.astype(np.int64)),
            torch.from_numpy(table.values["timestamp"].astype(np.int64)),
            torch.from_numpy(rating),
            torch.from_numpy((rating >= self.label_threshold).astype(np.float32)),
        )

    def __call__(self) -> InteractionData:
        folder = self.folder()
        users = read_delimited(
            folder / "u.user", "|", ["user", "age", "gender", "occupation", "zip"]
        )
        items = read_delimited(
            folder / "u.item",
            "|",
            ["item", "title", "release", "video", "url", *GENRES],
            encoding="latin-1",
        )
        user_ids, item_ids = (
            to_int(users, "user", folder / "u.user"),
            to_int(items, "item", folder / "u.item"),
        )
        user_index = pd.Index(user_ids.astype(str), dtype=object)
        item_index = pd.Index(item_ids.astype(str), dtype=object)
        report = DataReport("ml-100k", folder=str(folder), split=self.split)
        base = self._ratings(folder / f"{self.split}.base", user_index, item_index, report)
        test = self._ratings(folder / f"{self.split}.test", user_index, item_index, report)
        train, valid = carve_validation(base, self.valid_fraction, self.seed)
        report.note(
            "carve_validation",
            f"{self.split}.base",
            fraction=self.valid_fraction,
            rows_moved=len(valid),
            seed=self.seed,
        )

        age = to_int(users, "age", folder / "u.user")
        gender, n_gender = categorical_codes(users["gender"])
        occupation, n_occ = categorical_codes(users["occupation"])
        zip_prefix, n_zip = categorical_codes(users["zip"].str[:1])
        user_features = FeatureTable(
            categorical={
                "age_bucket": torch.as_tensor(
                    np.digitize(age.to_numpy(), AGE_BUCKETS) + 1, dtype=torch.int64
                ),
                "gender": gender,
                "occupation": occupation,
                "zip_prefix": zip_prefix,
            },
            cardinality={
                "age_bucket": len(AGE_BUCKETS) + 2,
                "gender": n_gender,
                "occupation": n_occ,
                "zip_prefix": n_zip,
            },
        )
        year = pd.to_datetime(items["release"], format="%d-%b-%Y", errors="coerce").dt.year
        year_std = ((year - year.mean()) / year.std()).fillna(0.0).to_numpy(np.float32)
        genres = torch.as_tensor(items[GENRES].astype(np.float32).to_numpy())
        decade, n_decade = categorical_codes(
            (year // 10).astype("Int64").astype(str).replace("<NA>", "")
        )
        item_features = FeatureTable(
            categorical={"decade": decade},
            multi_hot={"genres": genres},
            numeric={"release_year": torch.as_tensor(year_std)},
            cardinality={"decade": n_decade, "genres": len(GENRES)},
        )
        return InteractionData(
            train=train,
            valid=valid,
            test=test,
            user_ids=user_ids.to_numpy(),
            item_ids=item_ids.to_numpy(),
            user_features=user_features,
            item_features=item_features,
            item_titles=items["title"].to_numpy(),
            report=report.finish({"train": len(train), "valid": len(valid), "test": len(test)}),
            name="ml-100k",
        )
