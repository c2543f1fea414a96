"""MovieLens-1M (Harper & Konstan, 2015): 1,000,209 ratings of 3,706 movies by 6,040 users.

Read from `data_dir/ml-1m` (RECSYS_DATA_DIR) when the files are there, else downloaded from
GroupLens on first use. GroupLens publishes only an MD5 of the archive
(c4d9eecfca2ab87c1945afe126590906, as many projects pin it); the sha256 checked here is the one pinned for
the same archive by tensorflow/examples (lite/examples/recommendation/ml/data/
example_generation_movielens.py) and the keras-rs examples. Every member's CRC is tested before
unpacking, and the sha256 of the archive and of each file read go into the data report.
There is no canonical split: the ratings go through the generic reader and `split` (random 75/5/20
by default), so every split method of `data=interactions` works here too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.data.ingest.features import FeatureSpec, build_features
from recsys.data.ingest.readers import read_delimited
from recsys.data.ingest.report import DataReport, format_report
from recsys.data.interactions import InteractionData
from recsys.data.sources.download import fetch_archive, local_copy, sha256_of
from recsys.data.sources.interaction_log import InteractionLogSource, index_splits
from recsys.errors import DataError

log = logging.getLogger(__name__)

URL = "https://files.grouplens.org/datasets/movielens/ml-1m.zip"
ARCHIVE_SHA256 = "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20"
FILES = ["ratings.dat", "users.dat", "movies.dat"]
# ratings.dat is `user::item::rating::timestamp`, all numbers: read with ':' (the fast C parser),
# the empty fields between the two colons sit at the odd positions.
RATING_COLUMNS = {"user": 0, "item": 2, "rating": 4, "timestamp": 6}


@dataclass
class MovieLens1M:
    root: str | None = (
        None  # folder with ratings.dat, users.dat, movies.dat; None = data_dir/ml-1m or download
    )
    cache_dir: str = "~/.cache/recsys"
    data_dir: str | None = field(default_factory=lambda: os.environ.get("RECSYS_DATA_DIR"))
    url: str = URL
    archive_sha256: str | None = ARCHIVE_SHA256  # None = record the archive's sha256 only
    cleaning: Mapping[str, Any] = field(default_factory=dict)
    split: Mapping[str, Any] = field(
        default_factory=lambda: {"method": "random", "valid_fraction": 0.05, "test_fraction": 0.2}
    )
    label_threshold: float | None = 4.0  # rating >= this counts as a conversion
    seed: int = 0

    def folder(self) -> tuple[Path, dict[str, str]]:
        if self.root is not None:
            folder = Path(self.root).expanduser()
            if not folder.is_dir():
                raise DataError(f"{folder}: data.root is not a directory")
            return folder, {"root": str(folder)}
        local = local_copy(self.data_dir, "ml-1m", FILES)
        if local is not None:
            return local, {"root": str(local)}
        looked_in = Path(self.data_dir).expanduser() / "ml-1m" if self.data_dir else None
        return fetch_archive(
            self.url, Path(self.cache_dir), "ml-1m", self.archive_sha256, FILES, looked_in
        )

    def __call__(self) -> InteractionData:
        folder, facts = self.folder()
        report = DataReport("ml-1m", folder=str(folder), **facts)
        ratings = InteractionLogSource(
            path=str(folder / "ratings.dat"),
            format="whitespace",
            sep=":",
            header=False,
            encoding="latin-1",
            columns=RATING_COLUMNS,
            cleaning=self.cleaning,
            split=self.split,
            label_threshold=self.label_threshold,
            seed=self.seed,
        )
        splits, users, items = index_splits(
            ratings.load_tables(report), report, self.label_threshold
        )

        user_path, movie_path = folder / "users.dat", folder / "movies.dat"
        people = read_delimited(user_path, "::", ["user", "gender", "age", "occupation", "zip"])
        people["zip_prefix"] = people["zip"].str[:1]
        user_spec = FeatureSpec(
            path=str(user_path),
            id="user",
            categorical=["gender", "age", "occupation", "zip_prefix"],
        )
        user_features, _, user_facts = build_features(user_spec, users, "user", people)

        movies = read_delimited(movie_path, "::", ["item", "title", "genres"], encoding="latin-1")
        year = pd.to_numeric(movies["title"].str.extract(r"\((\d{4})\)\s*$")[0], errors="coerce")
        movies["release_year"] = year
        movies["decade"] = (year // 10 * 10).astype("Int64").astype(str).replace("<NA>", "")
        item_spec = FeatureSpec(
            path=str(movie_path),
            id="item",
            categorical=["decade"],
            multi_hot=["genres"],
            numeric=["release_year"],
            title="title",
        )
        item_features, titles, item_facts = build_features(item_spec, items, "item", movies)
        report.info["user_features"] = {**user_facts, "sha256": sha256_of(user_path)}
        report.info["item_features"] = {**item_facts, "sha256": sha256_of(movie_path)}
        data = InteractionData(
            train=splits["train"],
            valid=splits["valid"],
            test=splits["test"],
            user_ids=users.ids,
            item_ids=items.ids,
            user_features=user_features,
            item_features=item_features,
            item_titles=np.asarray(titles, dtype=object),
            report=report.finish({k: len(v) for k, v in splits.items()}),
            name="ml-1m",
        )
        log.info("%s", format_report(data.report, data.summary()))
        return data
