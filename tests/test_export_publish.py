"""Export never deletes what it did not write: only an earlier recsys export is replaced, a user's
folder (a web app with its own manifest.json, a `.partial` or `.failed` folder) survives byte for
byte; and every path the user passes is read relative to where they stand."""

from __future__ import annotations

import json
import shutil

import pytest

from recsys.errors import ExportError
from recsys.serving import loader, publish
from recsys.serving.exporter import export_from_config
from tests.serving_support import export_config, exported, trained_run


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")


def _snapshot(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _web_app(folder):
    """A user's folder that happens to hold a manifest.json."""
    (folder / "static").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "my app", "icons": []}))
    (folder / "index.html").write_text("<html></html>")
    (folder / "static" / "app.js").write_text("console.log(1)")
    return _snapshot(folder)


def _fake_export(folder, body: str):
    """A folder shaped like a recsys export (manifest with recsys's keys, only listed files)."""
    (folder / "vocab").mkdir(parents=True)
    (folder / "vocab" / "items.txt").write_text(body)
    manifest = {
        "format_version": 1,
        "artifacts": {},
        "vocab": {},
        "files": {"vocab/items.txt": "x"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_foreign_manifest_folder_survives_an_export_into_it(mf_run, tmp_path):
    app = tmp_path / "app"
    before = _web_app(app)
    with pytest.raises(ExportError, match=f"{app}: exists and is not a recsys export"):
        exported(mf_run, app)
    assert _snapshot(app) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app"]  # no staging left behind


def test_export_with_an_extra_user_file_is_not_replaced(tmp_path):
    target = tmp_path / "export"
    _fake_export(target, "a\n")
    (target / "notes.txt").write_text("mine")
    staging = publish.make_staging(target)
    with pytest.raises(ExportError, match="not a recsys export"):
        publish.publish(staging, target)
    assert (target / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_republish_replaces_an_earlier_export_and_leaves_nothing_else(
    tmp_path, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(publish, "_exchange", lambda a, b: False)
    target = tmp_path / "export"
    _fake_export(target, "old\n")
    staging = publish.make_staging(target)
    _fake_export(staging, "new\n")
    publish.publish(staging, target)
    assert (target / "vocab" / "items.txt").read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_user_partial_and_failed_folders_are_never_touched(tmp_path):
    out = tmp_path / "export"
    mine = {name: tmp_path / name for name in (".export.partial", "export.failed")}
    for folder in mine.values():
        folder.mkdir()
        (folder / "keep.txt").write_text("mine")
    staging = publish.make_staging(out)
    assert staging.parent == tmp_path and staging.name != ".export.partial"
    kept = publish.keep_failed(staging, out)
    assert kept.name.startswith("export.failed-") and kept.is_dir()
    for folder in mine.values():
        assert (folder / "keep.txt").read_text() == "mine"


def test_file_or_symlink_in_place_of_the_export_is_refused(tmp_path):
    (tmp_path / "export").write_text("a file")
    with pytest.raises(ExportError, match="is a file"):
        publish.check_target(tmp_path / "export")
    (tmp_path / "link").symlink_to(tmp_path)
    with pytest.raises(ExportError, match="symbolic link"):
        publish.check_target(tmp_path / "link")


def test_missing_run_directory_is_one_line(tmp_path):
    with pytest.raises(ExportError, match="no-such-run: run directory not found"):
        export_from_config(export_config(f"run_dir={tmp_path}/no-such-run"))


def test_relative_paths_and_re_export_over_an_own_export(mf_run, tmp_path, monkeypatch):
    """`run_dir=` and `out_dir=` relative to the working directory, twice into the same folder."""
    shutil.copytree(mf_run, tmp_path / "run", ignore=shutil.ignore_patterns("export*"))
    monkeypatch.chdir(tmp_path)
    first, manifest = exported("run", "out")
    assert first == tmp_path / "out" and loader.verify_all(first)["files"]
    second, manifest = exported("run", "out", "format=both")
    assert loader.verify_all(second)["artifacts"]["retriever"]["files"]["pt2"] == "retriever.pt2"
    assert "learned factors" in manifest["serving"]["embedding_columns"]  # MF's bias column
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "run"]


def test_published_export_is_as_readable_as_a_folder_made_with_mkdir(tmp_path):
    """mkdtemp makes 0700 folders: the export must stay readable to the serving user."""
    plain = tmp_path / "plain"
    plain.mkdir()
    target = tmp_path / "export"
    staging = publish.make_staging(target)
    _fake_export(staging, "a\n")
    publish.publish(staging, target)
    assert target.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
