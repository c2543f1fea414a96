"""MovieLens-100K (Harper & Konstan, 2015) with its canonical u1..u5 splits and side features.

Every rating is a positive interaction for retrieval; `label_threshold` turns ratings into
conversions (rating >= 4) for the propensity head. Files come from `root`, or are downloaded from
GroupLens into the cache on first use and checked against the sha256 of the published files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from recsys.data.download import fetch_zip
from recsys.data.interactions import DataError, FeatureTable, InteractionData, Interactions
from recsys.data.readers import read_delimited, to_int
from recsys.data.splits import carve_validation

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
RATING_COLUMNS = ["user", "item", "rating", "timestamp"]
AGE_BUCKETS = [18, 25, 35, 45, 50, 56]  # the MovieLens-1M age groups


def _codes(values: pd.Series) -> tuple[torch.Tensor, int]:
    """Categorical codes with 0 reserved for missing / unknown."""
    cat = pd.Categorical(values.fillna("").replace("", np.nan))
    codes = torch.as_tensor(cat.codes.astype(np.int64) + 1)
    return codes, len(cat.categories) + 1


@dataclass
class MovieLens100K:
    root: str | None = None  # local folder; None = download into cache_dir
    cache_dir: str = "~/.cache/recsys"
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
        return fetch_zip(URL, Path(self.cache_dir), "ml-100k", CHECKSUMS)

    def _ratings(self, path: Path, user_index: dict, item_index: dict) -> Interactions:
        frame = read_delimited(path, "\t", RATING_COLUMNS)
        users, items = to_int(frame, "user", path), to_int(frame, "item", path)
        unknown = ~users.isin(user_index.keys()) | ~items.isin(item_index.keys())
        if unknown.any():
            row = int(unknown.to_numpy().argmax())
            raise DataError(f"{path}: row {row + 1}: user or item id not in u.user / u.item")
        ratings = pd.to_numeric(frame["rating"], errors="coerce")
        if ratings.isna().any():
            row = int(ratings.isna().to_numpy().argmax())
            raise DataError(
                f"{path}: row {row + 1}, column 'rating': {frame['rating'].iloc[row]!r} is not a number"
            )
        r = torch.as_tensor(ratings.to_numpy(np.float32))
        return Interactions(
            torch.tensor(users.map(user_index).to_numpy()),
            torch.tensor(items.map(item_index).to_numpy()),
            torch.tensor(to_int(frame, "timestamp", path).to_numpy()),
            r,
            (r >= self.label_threshold).float(),
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
        user_index = {u: i for i, u in enumerate(user_ids)}
        item_index = {m: i for i, m in enumerate(item_ids)}
        base = self._ratings(folder / f"{self.split}.base", user_index, item_index)
        test = self._ratings(folder / f"{self.split}.test", user_index, item_index)
        train, valid = carve_validation(base, self.valid_fraction, self.seed)

        age = to_int(users, "age", folder / "u.user")
        gender, n_gender = _codes(users["gender"])
        occupation, n_occ = _codes(users["occupation"])
        zip_prefix, n_zip = _codes(users["zip"].str[:1])
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
        decade, n_decade = _codes((year // 10).astype("Int64").astype(str).replace("<NA>", ""))
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
            report={
                "source": "ml-100k",
                "folder": str(folder),
                "split": self.split,
                "rows_read": {f"{self.split}.base": len(base), f"{self.split}.test": len(test)},
                "rows_dropped": 0,
                "steps": [
                    {
                        "step": "carve_validation",
                        "fraction": self.valid_fraction,
                        "rows_moved": len(valid),
                    }
                ],
            },
            name="ml-100k",
        )
