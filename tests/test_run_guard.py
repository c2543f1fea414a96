"""One run per run directory (recsys/run_guard.py): a used directory is refused before anything of
it is overwritten, a lock keeps two runs apart, and a failed start leaves no half-made directory."""

from __future__ import annotations

import fcntl
import shutil

import pytest

from recsys.errors import DataError, RunError
from recsys.run_dir import RunDir
from recsys.run_guard import RunGuard
from recsys.train import train
from tests.conftest import TINY, compose_config

ONE_EPOCH = [*TINY, "trainer.max_epochs=1"]
NOT_DATA = [o for o in ONE_EPOCH if not o.startswith("data.")]


def missing_data_file(tmp_path) -> list[str]:
    return [*NOT_DATA, "data=interactions", f"data.path={tmp_path / 'missing.csv'}"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("guard") / "run"
    train(compose_config(ONE_EPOCH, run))
    return run


def snapshot(run):
    return {p.relative_to(run): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_second_run_into_used_directory_is_refused_and_keeps_the_first(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    before = snapshot(run)
    assert not (run / ".recsys.lock").exists()  # the finished run let go of its lock
    with pytest.raises(RunError, match=f"{run} already holds a recsys run"):
        train(compose_config([*ONE_EPOCH, "model.dim=8"], run))
    assert snapshot(run) == before


def test_run_is_refused_while_another_trains_in_the_directory(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with (run / ".recsys.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError, match="another run is training in this directory"):
            train(compose_config(ONE_EPOCH, run))
    assert (run / ".recsys.lock").exists()  # the other run's lock is left alone


def test_lock_file_left_by_a_killed_run_does_not_block(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / ".recsys.lock").write_text("pid 999999 on gone\n")  # no process holds it
    with RunGuard(RunDir(run)):
        assert "pid" in (run / ".recsys.lock").read_text()
    assert not (run / ".recsys.lock").exists()


def test_failed_start_leaves_no_run_directory(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(DataError, match="missing.csv"):
        train(compose_config(missing_data_file(tmp_path), run))
    assert not run.exists()


def test_failed_start_removes_hydra_launch_record_of_this_launch(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (run / ".hydra" / name).write_text("{}\n")
    (run / "train.log").write_text("")
    with pytest.raises(DataError):
        train(compose_config(missing_data_file(tmp_path), run))
    assert not run.exists()


def test_failed_start_keeps_what_was_in_the_directory(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("{}\n")
    (run / "notes.txt").write_text("mine")
    with pytest.raises(DataError):
        train(compose_config(missing_data_file(tmp_path), run))
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == [
        ".hydra",
        ".hydra/config.yaml",
        "notes.txt",
    ]
