"""Area "export": where the export goes (`out_dir` variants) and what is exported, through the
`scripts/export.py` entry (`export_from_config`). A folder the user owns must survive byte for byte;
the few successful exports (slow: a fresh-process parity check each) must verify and load."""

from __future__ import annotations

import json
import os
from pathlib import Path

from recsys.serving import loader
from recsys.serving.exporter import export_from_config
from tests.bad_inputs.fixtures import export_copy, run_copy
from tests.bad_inputs.harness import Case, DataLost
from tests.serving_support import export_config

AREA = "export"


def _snapshot(folder: Path) -> dict:
    if folder.is_file():
        return {".": folder.read_bytes()}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def _user_folder(tmp: Path, name: str = "mine") -> Path:
    """A folder of the user's with a manifest.json of its own (a web app) and other files."""
    folder = tmp / name
    (folder / "static").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps({"name": "my app", "start_url": "/"}))
    (folder / "index.html").write_text("<html>mine</html>")
    (folder / "static" / "app.js").write_text("console.log('mine')")
    return folder


def _export_into(prepare, *overrides: str):
    """run(tmp): copy the run, `prepare(tmp, run)` returns out_dir (and the user's files to guard),
    then export; the snapshot of those files is kept in tmp for the check."""

    def run(tmp: Path):
        root = run_copy(tmp)
        out_dir, guarded = prepare(tmp, root)
        _GUARDED[str(tmp)] = {str(p): _snapshot(p) for p in guarded}
        cfg = export_config(f"run_dir={root}", f"out_dir={out_dir}", *overrides)
        return export_from_config(cfg)

    return run


_GUARDED: dict[str, dict] = {}  # tmp -> {guarded path: snapshot before the export}


def _files_survived(_result, tmp: Path) -> None:
    for path, before in _GUARDED.pop(str(tmp), {}).items():
        if not Path(path).exists() or _snapshot(Path(path)) != before:
            raise DataLost(f"{path}: changed or deleted by the export")


def _verified(result, tmp: Path) -> None:
    out_dir, manifest = result
    guarded = {Path(p).name for p in _GUARDED.get(str(tmp), {})}
    _files_survived(result, tmp)
    checked = loader.verify_all(out_dir)
    assert checked["files"] == manifest["files"], "manifest on disk differs from the one returned"
    users = loader.read_vocabulary(out_dir, "users")
    scores, items = loader.load_artifact(out_dir, "retriever")(__import__("torch").tensor([0]), 5)
    assert len(users) == manifest["data"]["num_users"] and items.shape == (1, 5)
    leftovers = [
        p.name
        for p in out_dir.parent.iterdir()
        if p.name.startswith(f".{out_dir.name}.") and p.name not in guarded
    ]
    assert not leftovers, f"staging left behind: {leftovers}"


def _config_error(*overrides: str, names: str, name: str) -> Case:
    def run(tmp: Path):
        root = run_copy(tmp)
        return export_from_config(export_config(f"run_dir={root}", f"out_dir={tmp}/e", *overrides))

    return Case(name, AREA, run, names=names, check=_no_export)


def _no_export(_result, tmp: Path) -> None:
    assert not (tmp / "e").exists(), "an export was published despite the error"


def _relative_export(tmp: Path):
    here = Path.cwd()
    try:
        run_copy(tmp)
        os.chdir(tmp)
        return export_from_config(export_config("run_dir=run", "out_dir=sub/rel-out"))
    finally:
        os.chdir(here)


def _relative_ok(result, tmp: Path) -> None:
    out_dir, _ = result
    assert out_dir == tmp / "sub" / "rel-out", f"exported to {out_dir}"
    _verified(result, tmp)


def _reexport(tmp: Path):
    previous = export_copy(tmp, name="out")
    _GUARDED[str(tmp)] = {}
    root = run_copy(tmp)
    before = (previous / "manifest.json").read_bytes()
    result = export_from_config(
        export_config(f"run_dir={root}", f"out_dir={previous}", "verify.users=7")
    )
    assert (previous / "manifest.json").read_bytes() != before, "the old export is still there"
    return result


def _readonly_parent(tmp: Path, root: Path):
    parent = tmp / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    return parent / "export", [parent]


def _readonly_parent_case() -> Case:
    """A parent folder the user cannot write; as root (who writes anywhere) a parent that is a file."""
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return Case("read-only-parent", AREA, _export_into(_readonly_parent), names="locked",
                    check=_files_survived)  # fmt: skip
    return Case("unwritable-parent", AREA,
                _export_into(lambda tmp, run: _parent_file(tmp, "locked")), names="locked",
                check=_files_survived)  # fmt: skip


def cases() -> list[Case]:
    guard = _files_survived
    return [
        Case(
            "foreign-manifest-folder",
            AREA,
            _export_into(lambda tmp, run: (_user_folder(tmp), [tmp / "mine"])),
            names="not a recsys export",
            check=guard,
        ),  # fmt: skip
        Case(
            "non-empty-user-folder",
            AREA,
            _export_into(lambda tmp, run: _nonempty(tmp)),
            names="not a recsys export",
            check=guard,
        ),  # fmt: skip
        Case(
            "file-in-place-of-out-dir",
            AREA,
            _export_into(lambda tmp, run: _a_file(tmp)),
            names="is a file",
            check=guard,
        ),  # fmt: skip
        Case(
            "out-dir-is-the-run-itself",
            AREA,
            _export_into(lambda tmp, run: (run, [run])),
            names="not a recsys export",
            check=guard,
        ),  # fmt: skip
        Case(
            "out-dir-is-a-symlink",
            AREA,
            _export_into(lambda tmp, run: _symlink(tmp)),
            names="symbolic link",
            check=guard,
        ),  # fmt: skip
        Case(
            "export-plus-user-file",
            AREA,
            _export_into(lambda tmp, run: _export_with_extra(tmp)),
            names="not a recsys export",
            check=guard,
        ),  # fmt: skip
        Case(
            "parent-is-a-file",
            AREA,
            _export_into(lambda tmp, run: _parent_file(tmp)),
            names="parent.txt",
            check=guard,
        ),  # fmt: skip
        _readonly_parent_case(),
        _config_error("format=onnx", names="format='onnx'", name="unknown-format"),
        _config_error("exclude=[train,holdout]", names="holdout", name="unknown-exclude-split"),
        _config_error("num_popular=0", names="num_popular", name="zero-popular-items"),
        _config_error("verify.users=-5", names="verify.users", name="negative-verify-users"),
        _config_error("verify.atol=-1", names="verify.atol", name="negative-atol"),
        _config_error("checkpoint=middle", names="middle", name="unknown-checkpoint-name"),
        Case(
            "run-dir-does-not-exist",
            AREA,
            lambda tmp: export_from_config(export_config(f"run_dir={tmp}/nope")),
            names="run directory not found",
        ),  # fmt: skip
        Case("relative-run-dir-does-not-exist", AREA, _relative_missing, names="nope"),
        Case(
            "ckpt-path-missing",
            AREA,
            lambda tmp: export_from_config(export_config(f"ckpt_path={tmp}/x.ckpt")),
            names="x.ckpt",
        ),  # fmt: skip
        Case(
            "nothing-to-export",
            AREA,
            lambda tmp: export_from_config(export_config()),
            names="run_dir=",
        ),  # fmt: skip
        Case("relative-run-and-out-dir", AREA, _relative_export, expect="ok", check=_relative_ok),
        Case("re-export-over-own-export", AREA, _reexport, expect="ok", check=_verified),
        Case(
            "user-partial-folder-beside",
            AREA,
            _export_into(lambda tmp, run: _partial_beside(tmp)),
            expect="ok",
            check=_verified,
        ),  # fmt: skip
    ]


def _nonempty(tmp: Path):
    folder = tmp / "docs"
    folder.mkdir()
    (folder / "notes.md").write_text("my notes")
    return folder, [folder]


def _a_file(tmp: Path):
    path = tmp / "export"
    path.write_text("not a folder")
    return path, [path]


def _symlink(tmp: Path):
    real = _user_folder(tmp, "real")
    (tmp / "link").symlink_to(real)
    return tmp / "link", [real]


def _export_with_extra(tmp: Path):
    folder = export_copy(tmp, name="old")
    (folder / "my-notes.txt").write_text("keep me")
    return folder, [folder]


def _parent_file(tmp: Path, name: str = "parent.txt"):
    path = tmp / name
    path.write_text("a file")
    return path / "export", [path]


def _partial_beside(tmp: Path):
    mine = tmp / ".out.partial"
    mine.mkdir()
    (mine / "draft.txt").write_text("mine")
    failed = tmp / "out.failed"
    failed.mkdir()
    (failed / "log.txt").write_text("mine")
    return tmp / "out", [mine, failed]


def _relative_missing(tmp: Path):
    here = Path.cwd()
    try:
        os.chdir(tmp)
        return export_from_config(export_config("run_dir=nope"))
    finally:
        os.chdir(here)
