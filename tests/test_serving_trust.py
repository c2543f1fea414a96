"""Serving trusts nothing it did not check: manifest paths stay inside the export, a broken
manifest is an IntegrityError, `k` is validated on every path, and an unpinned manifest is said."""

from __future__ import annotations

import hashlib
import json
import runpy

import pytest

from recsys.serving import loader
from tests.bad_inputs.fixtures import export_copy
from tests.conftest import ROOT

RECOMMEND = runpy.run_path(str(ROOT / "scripts" / "recommend.py"))


def _rewrite_manifest(export, edit) -> None:
    path = export / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("escape", ["/etc/passwd", "../outside.txt", "vocab/../../outside.txt"])
def test_manifest_paths_that_leave_the_export_are_refused(tmp_path, escape):
    export = export_copy(tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("a\n")
    digest = hashlib.sha256(outside.read_bytes()).hexdigest()

    def point_users_outside(manifest):
        manifest["files"][escape] = digest
        manifest["vocab"]["users"] = escape

    _rewrite_manifest(export, point_users_outside)
    with pytest.raises(loader.IntegrityError, match="leaves the export directory"):
        loader.read_vocabulary(export, "users")


def test_symlink_out_of_the_export_is_refused(tmp_path):
    export = export_copy(tmp_path)
    users = export / "vocab" / "users.txt"
    outside = tmp_path / "users.txt"
    users.rename(outside)
    users.symlink_to(outside)  # same bytes, so the sha256 matches
    with pytest.raises(loader.IntegrityError, match="symbolic link out of the export"):
        loader.read_vocabulary(export, "users")


@pytest.mark.parametrize("text", ["", '{"files": {', "[1, 2]", "\xff\xfe"])
def test_truncated_or_invalid_manifest_is_an_integrity_error(tmp_path, text):
    export = export_copy(tmp_path)
    (export / "manifest.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(loader.IntegrityError, match="manifest.json"):
        loader.load_artifact(export, "retriever")


@pytest.mark.parametrize("k", [0, -1, 10**30, "abc", "2.5", True])
@pytest.mark.parametrize("user", ["known", "no-such-user"])
def test_k_is_validated_on_the_model_and_the_fallback_path(tmp_path, k, user):
    export = export_copy(tmp_path)
    if user == "known":
        user = loader.read_vocabulary(export, "users")[0]
    with pytest.raises(loader.RequestError, match="k must be"):
        RECOMMEND["recommend"](loader, export, user, k)


def test_unknown_user_gets_the_most_popular_items(tmp_path):
    export = export_copy(tmp_path)
    rec = RECOMMEND["recommend"](loader, export, "no-such-user", "3")
    assert not rec.known and rec.items == loader.read_vocabulary(export, "popular_items")[:3]


def test_unpinned_manifest_is_said_and_a_wrong_pin_is_one_line(tmp_path, capsys):
    export = export_copy(tmp_path)
    user = loader.read_vocabulary(export, "users")[0]
    assert RECOMMEND["main"]([str(export), "--user", user, "--k", "2"]) == 0
    assert "manifest.json is not pinned" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        RECOMMEND["main"]([str(export), "--user", user, "--manifest-sha256", "0" * 64])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: " in err and "differs from the pinned value" in err
