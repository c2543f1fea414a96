"""Area "serving": a damaged or hostile export and bad requests, through the standalone loader
(`recsys/serving/loader.py`, what every export ships) and `scripts/recommend.py`'s `recommend`."""

from __future__ import annotations

import hashlib
import json
import runpy
from pathlib import Path

import torch

from recsys.serving import loader
from tests.bad_inputs.fixtures import export_copy
from tests.bad_inputs.harness import Case
from tests.conftest import ROOT
from tests.serving_support import flip_one_byte

AREA = "serving"
_RECOMMEND: dict = {}


def recommend(*args, **kwargs):
    """scripts/recommend.py's `recommend`, read once (the script is not a package module)."""
    if not _RECOMMEND:
        _RECOMMEND.update(runpy.run_path(str(ROOT / "scripts" / "recommend.py")))
    return _RECOMMEND["recommend"](loader, *args, **kwargs)


def _first_user(export: Path) -> str:
    return (export / "vocab" / "users.txt").read_text().split("\n")[0]


def _serve(damage, user=_first_user, k=5, **kwargs):
    """run(tmp): copy the export, `damage(export, tmp)` it, recommend for `user(export)` (or a raw id)."""

    def run(tmp: Path):
        export = export_copy(tmp)
        damage(export, tmp)
        return recommend(export, user(export) if callable(user) else user, k, **kwargs)

    return run


def _nothing(export: Path, tmp: Path) -> None:
    pass


def _flip(relative: str):
    def damage(export: Path, tmp: Path) -> None:
        flip_one_byte(export / relative)

    return damage


def _remove(relative: str):
    return lambda export, tmp: (export / relative).unlink()


def _manifest_text(text: bytes):
    return lambda export, tmp: (export / "manifest.json").write_bytes(text)


def _edit_manifest(edit):
    def damage(export: Path, tmp: Path) -> None:
        path = export / "manifest.json"
        manifest = json.loads(path.read_text())
        edit(manifest, export, tmp)
        path.write_text(json.dumps(manifest))

    return damage


def _vocab_points_to(name: str, relative: str):
    """The manifest sends vocabulary `name` to `relative`, listed with the true hash of a file
    outside the export (so only the path check can stop it)."""

    def edit(manifest: dict, export: Path, tmp: Path) -> None:
        outside = tmp / "outside.txt"
        outside.write_bytes((export / "vocab" / f"{name}.txt").read_bytes())
        manifest["files"][relative] = hashlib.sha256(outside.read_bytes()).hexdigest()
        manifest["vocab"][name] = relative

    return edit


def _symlink_out(export: Path, tmp: Path) -> None:
    users = export / "vocab" / "users.txt"
    outside = tmp / "users.txt"
    users.rename(outside)
    users.symlink_to(outside)  # same bytes: the sha256 still matches


def _rehash(relative: str, data: bytes):
    """Replace a file and update its manifest hash: only content checks can catch it."""

    def edit(manifest: dict, export: Path, tmp: Path) -> None:
        (export / relative).write_bytes(data)
        manifest["files"][relative] = hashlib.sha256(data).hexdigest()

    return edit


def _recommended_right(result, tmp: Path) -> None:
    export = tmp / "export"
    users = loader.read_vocabulary(export, "users")
    items = loader.read_vocabulary(export, "items")
    assert result.known and result.user == users[0]
    _, top = loader.load_artifact(export, "retriever")(torch.tensor([0]), len(result.items))
    assert result.items == [items[i] for i in top[0].tolist()], "items differ from the retriever"
    assert result.scores == sorted(result.scores, reverse=True), "scores not descending"


def _popular(n: int):
    def check(result, tmp: Path) -> None:
        popular = loader.read_vocabulary(tmp / "export", "popular_items")
        assert not result.known, "an unknown user was treated as known"
        assert result.items == popular[:n], "not the most popular items"

    return check


def _pinned(export: Path) -> str:
    return hashlib.sha256((export / "manifest.json").read_bytes()).hexdigest()


def _with_pin(pin_of):
    def run(tmp: Path):
        export = export_copy(tmp)
        return recommend(export, _first_user(export), 5, pin=pin_of(export))

    return run


def _load(name: str, fmt=None, damage=_nothing):
    def run(tmp: Path):
        export = export_copy(tmp)
        damage(export, tmp)
        return loader.load_artifact(export, name, fmt)

    return run


def _request_cases() -> list[Case]:
    """k and user ids of every bad shape, on the model path and on the popularity fallback."""
    bad_k = {"zero": 0, "negative": -1, "huge": 10**30, "past-catalogue": 201, "text": "abc",
             "fraction": "2.5", "float": 2.5, "bool": True, "none": None, "empty": ""}  # fmt: skip
    cases = []
    for label, k in bad_k.items():
        cases.append(Case(f"k-{label}-known-user", AREA, _serve(_nothing, k=k), names="k must"))
    for label in ("zero", "huge", "text", "negative"):
        cases.append(
            Case(
                f"k-{label}-unknown-user",
                AREA,
                _serve(_nothing, user="no-such-user", k=bad_k[label]),
                names="k must",
            )  # fmt: skip
        )
    for label, user in {"none": None, "list": ["u1"], "float": 1.5, "bool": False}.items():
        cases.append(Case(f"user-id-{label}", AREA, _serve(_nothing, user=user), names="user"))
    cases.append(Case("user-id-int-is-its-text", AREA, _serve(_nothing, user=12345, k=4),
                      expect="ok", check=_popular(4)))  # fmt: skip
    return cases


def cases() -> list[Case]:
    found = [
        Case("known-user-ok", AREA, _serve(_nothing), expect="ok", check=_recommended_right),
        Case(
            "k-as-text-ok", AREA, _serve(_nothing, k=" 7 "), expect="ok", check=_recommended_right
        ),
        Case(
            "unknown-user-fallback",
            AREA,
            _serve(_nothing, user="no-such-user", k=3),
            expect="ok",
            check=_popular(3),
        ),  # fmt: skip
        Case(
            "user-id-with-spaces-is-unknown",
            AREA,
            _serve(_nothing, user=lambda e: f" {_first_user(e)} ", k=2),
            expect="ok",
            check=_popular(2),
        ),  # fmt: skip
        Case("right-pin-ok", AREA, _with_pin(_pinned), expect="ok", check=_recommended_right),
        Case("wrong-pin", AREA, _with_pin(lambda e: "0" * 64), names="pinned"),
        Case("tampered-retriever", AREA, _serve(_flip("retriever.pt")), names="retriever.pt"),
        Case("tampered-users-vocab", AREA, _serve(_flip("vocab/users.txt")), names="users.txt"),
        Case("tampered-items-vocab", AREA, _serve(_flip("vocab/items.txt")), names="items.txt"),
        Case(
            "tampered-popular-fallback",
            AREA,
            _serve(_flip("vocab/popular_items.txt"), user="nobody"),
            names="popular_items.txt",
        ),  # fmt: skip
        Case("missing-retriever", AREA, _serve(_remove("retriever.pt")), names="retriever.pt"),
        Case("missing-items-vocab", AREA, _serve(_remove("vocab/items.txt")), names="items.txt"),
        Case("missing-manifest", AREA, _serve(_remove("manifest.json")), names="manifest.json"),
        Case("truncated-manifest", AREA, _serve(_truncate_manifest), names="manifest.json"),
        Case("empty-manifest", AREA, _serve(_manifest_text(b"")), names="manifest.json"),
        Case("manifest-is-a-list", AREA, _serve(_manifest_text(b"[1, 2]")), names="manifest.json"),
        Case(
            "manifest-not-utf8", AREA, _serve(_manifest_text(b"\xff\xfe{}")), names="manifest.json"
        ),
        Case(
            "manifest-without-files",
            AREA,
            _serve(_edit_manifest(lambda m, e, t: m.pop("files"))),
            names="manifest.json",
        ),  # fmt: skip
        Case(
            "absolute-path-in-manifest",
            AREA,
            _serve(_edit_manifest(_vocab_points_to("users", "/etc/passwd"))),
            names="leaves the export",
        ),  # fmt: skip
        Case(
            "dotdot-path-in-manifest",
            AREA,
            _serve(_edit_manifest(_vocab_points_to("users", "../outside.txt"))),
            names="leaves the export",
        ),  # fmt: skip
        Case(
            "nested-dotdot-path-in-manifest",
            AREA,
            _serve(_edit_manifest(_vocab_points_to("items", "vocab/../../outside.txt"))),
            names="leaves the export",
        ),  # fmt: skip
        Case("symlink-out-of-export", AREA, _serve(_symlink_out), names="symbolic link"),
        Case(
            "vocab-not-listed",
            AREA,
            _serve(_edit_manifest(lambda m, e, t: m["files"].pop("vocab/users.txt"))),
            names="not listed",
        ),  # fmt: skip
        Case(
            "vocab-not-utf8-rehashed",
            AREA,
            _serve(_edit_manifest(_rehash("vocab/users.txt", b"\xff\xfe\n")), user="u1"),
            names="UTF-8",
        ),  # fmt: skip
        Case(
            "artifact-failed-verification",
            AREA,
            _serve(_edit_manifest(_unverify)),
            names="parity check",
        ),  # fmt: skip
        Case("unknown-artifact", AREA, _load("reranker"), names="reranker"),
        Case("format-not-exported", AREA, _load("retriever", "pt2"), names="pt2"),
        Case(
            "artifact-entry-without-files",
            AREA,
            _load("retriever", damage=_edit_manifest(_drop_artifact_files)),
            names="retriever",
        ),  # fmt: skip
    ]
    return found + _request_cases()


def _truncate_manifest(export: Path, tmp: Path) -> None:
    path = export / "manifest.json"
    path.write_bytes(path.read_bytes()[:100])


def _unverify(manifest: dict, export: Path, tmp: Path) -> None:
    manifest["artifacts"]["retriever"]["verification"]["torchscript"]["passed"] = False


def _drop_artifact_files(manifest: dict, export: Path, tmp: Path) -> None:
    manifest["artifacts"]["retriever"].pop("files")
