"""Ready data configs: ML-1M (download path tested on a local fake archive), ML-100K on the generic
reader, and `scripts/inspect_data.py`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from recsys.data.datamodule import build_datamodule
from recsys.data.sources import download, movielens, movielens1m
from recsys.errors import DataError
from tests.conftest import CONF, ROOT, compose_config, require_data


def fake_ml1m(folder: Path) -> Path:
    """A zip laid out like ml-1m.zip (`::` separated, latin-1 titles, genres `a|b`)."""
    rng = np.random.default_rng(0)
    ratings = [
        f"{u}::{m}::{rng.integers(1, 6)}::{978300000 + int(rng.integers(0, 10**6))}"
        for u in range(1, 41)
        for m in rng.choice(np.arange(1, 31), 12, replace=False)
    ]
    users = [
        f"{u}::{'MF'[u % 2]}::{[1, 18, 25][u % 3]}::{u % 21}::{u * 7 + 10000}" for u in range(1, 41)
    ]
    genres = ["Action", "Comedy|Drama", "Drama|Romance"]
    movies = [f"{m}::Movie {m}: Amélie ({1950 + m})::{genres[m % 3]}" for m in range(1, 31)]
    archive = folder / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ml-1m/ratings.dat", "\n".join(ratings) + "\n")
        zf.writestr("ml-1m/users.dat", "\n".join(users) + "\n")
        zf.writestr("ml-1m/movies.dat", ("\n".join(movies) + "\n").encode("latin-1"))
    return archive


def ml1m_cfg(tmp_path: Path, archive: Path, sha256: str | None):
    cfg = compose_config(
        [
            "data=ml1m",
            f"data.url={archive.as_uri()}",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"data.archive_sha256={sha256 if sha256 else 'null'}",
            "data.data_dir=null",  # the download path, whatever RECSYS_DATA_DIR holds
        ],
        tmp_path / "run",
    )
    return cfg


def test_ml1m_downloads_once_checks_the_archive_and_records_it(tmp_path):
    archive = fake_ml1m(tmp_path)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    cfg = ml1m_cfg(tmp_path, archive, digest)
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert data.report["archive_sha256"] == digest and data.report["downloaded"] == "now"
    assert (data.num_users, data.num_items) == (40, 30)
    assert data.report["counts_add_up"] and data.report["rows_read"] == 480
    assert data.item_titles[0] == "Movie 1: Amélie (1951)"
    genres = data.item_features.multi_hot["genres"]
    assert data.item_features.cardinality["genres"] == 4 and genres.sum(1).max() == 2
    assert set(data.user_features.categorical) == {"gender", "age", "occupation", "zip_prefix"}
    assert set(data.item_features.names()) == {"decade", "genres", "release_year"}
    assert len(data.report["files"]["log"]["sha256"]) == 64
    # Second use: from the cache, the recorded archive hash still reported; no download.
    archive.unlink()
    again = build_datamodule(cfg.data, cfg.seed).load()
    assert again.report["downloaded"] == "earlier (cache)"
    assert again.report["archive_sha256"] == digest
    assert again.test.fingerprint() == data.test.fingerprint()


def test_ml1m_archive_with_wrong_checksum_is_refused(tmp_path):
    archive = fake_ml1m(tmp_path)
    cfg = ml1m_cfg(tmp_path, archive, "0" * 64)
    with pytest.raises(DataError, match="not the published 0000"):
        build_datamodule(cfg.data, cfg.seed).load()
    assert not (tmp_path / "cache" / "ml-1m").exists()


def test_ml1m_corrupt_archive_is_refused(tmp_path):
    archive = tmp_path / "ml-1m.zip"
    archive.write_bytes(b"PK\x03\x04 truncated")
    cfg = ml1m_cfg(tmp_path, archive, None)
    with pytest.raises(DataError, match="not a valid zip archive"):
        build_datamodule(cfg.data, cfg.seed).load()


def test_ml1m_from_a_local_folder_with_another_split(tmp_path):
    archive = fake_ml1m(tmp_path)
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(tmp_path)
    cfg = compose_config(
        ["data=ml1m", f"data.root={tmp_path / 'ml-1m'}", "data.split.method=leave_last_n"],
        tmp_path / "run",
    )
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert len(data.test) + data.report["rows_removed"] == 40  # one per user, minus unseen items
    assert data.test.labels is not None  # label_threshold: rating >= 4


def test_ml100k_report_adds_up():
    root = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")
    cfg = compose_config(["data=ml100k", f"data.root={root}"], ROOT / "unused")
    data = build_datamodule(cfg.data, cfg.seed).load()
    report = data.report
    assert (report["rows_read"], report["rows_removed"]) == (100_000, 0)
    assert report["rows_kept"] == {
        "train": 76_000,
        "valid": 4_000,
        "test": 20_000,
        "total": 100_000,
    }
    assert data.summary()["users"] == 943


@pytest.mark.slow
def test_inspect_data_prints_the_summary_without_training(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "user,item\n" + "".join(f"u{u},i{(u * 7 + k) % 13}\n" for u in range(30) for k in range(6))
    )
    cmd = [sys.executable, str(ROOT / "scripts" / "inspect_data.py"), "data=interactions",
           f"data.path={log}"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "users 30  items 13  interactions 180" in proc.stdout
    assert "train interactions per user:" in proc.stdout
    assert "rows read 180 = removed 0 + kept 180" in proc.stdout
    assert (proc.stdout + proc.stderr).count("rows read 180") == 1  # printed, not logged as well
    assert not list(tmp_path.glob("outputs")) and not list(tmp_path.glob(".hydra"))
    bad = subprocess.run([*cmd[:-1], f"data.path={tmp_path / 'missing.csv'}"], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 2
    said = [line for line in bad.stderr.splitlines() if "missing.csv" in line]
    assert said == [f"error: {tmp_path / 'missing.csv'}: file not found"]  # one line, said once


def test_saved_report_is_json(tmp_path):
    """Everything in a report serialises (numpy ints would not)."""
    archive = fake_ml1m(tmp_path)
    cfg = ml1m_cfg(tmp_path, archive, None)
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert json.loads(json.dumps(data.report))["source"] == "ml-1m"


PRESETS_ON_DISK = {
    "ml100k": "data_dir",
    "ml1m": "data_dir",
    "beauty": "train",
    "gowalla": "train",
    "ml1m_random": "train",
    "customers_ml100k": "source.data_dir",
}


@pytest.mark.parametrize("preset", sorted(p.stem for p in (CONF / "data").glob("*.yaml")))
def test_every_preset_reading_files_looks_in_recsys_data_dir(preset, tmp_path, monkeypatch):
    """A preset of a public data set finds its files under RECSYS_DATA_DIR; new presets too."""
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "local"))
    data = compose_config([f"data={preset}"], tmp_path / "run").data
    if preset in ("synthetic", "interactions", "customers_synthetic", "customers_file"):
        return  # generated, or the user's own files: nothing to look up
    assert preset in PRESETS_ON_DISK, f"conf/data/{preset}.yaml: which key reads RECSYS_DATA_DIR?"
    key = OmegaConf.select(data, PRESETS_ON_DISK[preset])
    assert str(key).startswith(str(tmp_path / "local"))


def test_ml100k_is_read_from_recsys_data_dir_without_downloading(tmp_path, monkeypatch):
    local = require_data("ml-100k", "u.data", "u.user", "u.item", "u1.base", "u1.test")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(local.parent))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(movielens, "fetch_zip", no_download)
    cfg = compose_config(["data=ml100k"], tmp_path / "run")
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert data.report["folder"] == str(local)
    assert data.report["rows_read"] == 100_000


def no_download(*args, **kwargs):
    raise AssertionError(f"downloaded although the data are local: {args}")


def test_ml100k_with_an_empty_data_dir_downloads_into_the_cache_or_names_the_dir(
    tmp_path, monkeypatch
):
    """Nothing under RECSYS_DATA_DIR: the download is asked for the GroupLens archive into the
    cache; without network the one-line error names the folder it looked in."""
    empty, cache = tmp_path / "empty", tmp_path / "cache"
    empty.mkdir()
    monkeypatch.setenv("RECSYS_DATA_DIR", str(empty))
    monkeypatch.setenv("RECSYS_CACHE_DIR", str(cache))
    asked = []

    def offline(url, timeout):
        asked.append(url)
        raise OSError("no network")

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    cfg = compose_config(["data=ml100k"], tmp_path / "run")
    with pytest.raises(DataError) as err:
        build_datamodule(cfg.data, cfg.seed).load()
    assert asked == [movielens.URL]
    message = str(err.value)
    assert f"no local copy in {empty / 'ml-100k'} (RECSYS_DATA_DIR)" in message
    assert "u1.base" in message and "data.root=" in message
    assert not list(empty.iterdir()) and not (cache / "ml-100k.zip.part").exists()


def test_ml1m_is_read_from_recsys_data_dir_without_downloading(tmp_path, monkeypatch):
    with zipfile.ZipFile(fake_ml1m(tmp_path)) as zf:
        zf.extractall(tmp_path / "local")
    monkeypatch.setenv("RECSYS_DATA_DIR", str(tmp_path / "local"))
    monkeypatch.setattr(movielens1m, "fetch_archive", no_download)
    cfg = compose_config(["data=ml1m"], tmp_path / "run")
    data = build_datamodule(cfg.data, cfg.seed).load()
    assert data.report["root"] == str(tmp_path / "local" / "ml-1m")
    assert data.report["rows_read"] == 480
