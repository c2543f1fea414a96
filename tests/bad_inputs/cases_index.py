"""Areas "export" and "serving" for the FAISS index (`index=faiss`): bad `index.*` settings at
export, and a damaged or missing index, bad requests and the unknown-user fallback when serving
with `loader.load_index` / `scripts/recommend.py --index`. One indexed export (a flat index, so
its answers must equal the exact retriever's) is made once and copied into each case."""

from __future__ import annotations

import atexit
import importlib.util
import shutil
import sys
import tempfile
from functools import cache
from pathlib import Path

import torch

from recsys.serving import loader
from recsys.serving.exporter import export_from_config
from tests.bad_inputs.cases_serving import recommend
from tests.bad_inputs.fixtures import export_copy, run_copy
from tests.bad_inputs.harness import Case
from tests.serving_support import export_config, exported, flip_one_byte


@cache
def _indexed() -> Path:
    base = Path(tempfile.mkdtemp(prefix="recsys-corpus-index-"))
    atexit.register(shutil.rmtree, base, ignore_errors=True)
    out, _ = exported(run_copy(base), base / "export", "index=faiss", "index.kind=flat")
    return out


def _index_copy(tmp: Path) -> Path:
    return Path(shutil.copytree(_indexed(), tmp / "export"))


def _export_with(*overrides: str):
    def run(tmp: Path):
        root = run_copy(tmp)
        cfg = export_config(f"run_dir={root}", f"out_dir={tmp}/e", *overrides)
        return export_from_config(cfg)

    return run


def _no_export(_result, tmp: Path) -> None:
    assert not (tmp / "e").exists(), "an export was published despite the error"


def _without_faiss(tmp: Path):
    saved = sys.modules.get("faiss")
    sys.modules["faiss"] = None  # `import faiss` raises ImportError, as where it is not installed
    try:
        return _export_with("index=faiss")(tmp)
    finally:
        if saved is None:
            sys.modules.pop("faiss", None)
        else:
            sys.modules["faiss"] = saved


def _flip(relative: str):
    def damage(export: Path) -> None:
        flip_one_byte(export / relative)

    return damage


def _serve(damage=None, user=None, k=5, plain=False):
    """run(tmp): an indexed export (or the plain one), damaged, then `recommend --index`."""

    def run(tmp: Path):
        export = export_copy(tmp) if plain else _index_copy(tmp)
        if damage is not None:
            damage(export)
        who = user if user is not None else loader.read_vocabulary(export, "users")[0]
        return recommend(export, who, k, ann=True)

    return run


def _same_as_exact(result, tmp: Path) -> None:
    export = tmp / "export"
    scores, top = loader.load_artifact(export, "retriever")(torch.tensor([0]), len(result.items))
    items = loader.read_vocabulary(export, "items")
    assert result.known and result.items == [items[i] for i in top[0].tolist()], (
        "not the exact top-k"
    )
    assert result.scores == sorted(result.scores, reverse=True), "scores not descending"


def _popular(result, tmp: Path) -> None:
    popular = loader.read_vocabulary(tmp / "export", "popular_items")
    assert not result.known and result.items == popular[:3], "not the most popular items"


def _export_cases() -> list[Case]:
    bad = {
        "unknown-kind": ("index.kind=annoy", "index.kind"),
        "zero-nprobe": ("index.nprobe=0", "index.nprobe"),
        "nprobe-over-nlist": ("index.nprobe=9", "index.nprobe"),
        "negative-nlist": ("index.nlist=-4", "index.nlist"),
        "fractional-ef-search": ("index.ef_search=1.5", "index.ef_search"),
        "pq-nbits-too-large": ("index.pq_nbits=20", "index.pq_nbits"),
        "pq-m-not-dividing-width": ("index.pq_m=7", "index.pq_m"),
        "nlist-over-catalogue": ("index.nlist=100000", "index.nlist"),
    }
    kinds = {"unknown-kind": (), "nprobe-over-nlist": ("index.kind=ivf_flat", "index.nlist=4"),
             "pq-m-not-dividing-width": ("index.kind=ivf_pq",),
             "nlist-over-catalogue": ("index.kind=ivf_flat",)}  # fmt: skip
    return [
        Case(
            f"index-{name}",
            "export",
            _export_with("index=faiss", *kinds.get(name, ()), override),
            names=key,
            check=_no_export,
        )  # fmt: skip
        for name, (override, key) in bad.items()
    ]


def cases() -> list[Case]:
    found = [Case("index-without-faiss", "export", _without_faiss, names="[serving]",
                  check=_no_export)]  # fmt: skip
    if importlib.util.find_spec("faiss") is None:  # the rest needs FAISS (the `serving` extra)
        return found
    return (
        found
        + _export_cases()
        + [
            Case("index-known-user-ok", "serving", _serve(), expect="ok", check=_same_as_exact),
            Case(
                "index-unknown-user-fallback",
                "serving",
                _serve(user="nobody", k=3),
                expect="ok",
                check=_popular,
            ),  # fmt: skip
            Case(
                "index-tampered-faiss-file",
                "serving",
                _serve(_flip("index/items.faiss")),
                names="items.faiss",
            ),  # fmt: skip
            Case(
                "index-tampered-seen-items",
                "serving",
                _serve(_flip("index/seen.pt")),
                names="seen.pt",
            ),  # fmt: skip
            Case(
                "index-tampered-params",
                "serving",
                _serve(_flip("index/params.json")),
                names="params.json",
            ),  # fmt: skip
            Case(
                "index-file-missing",
                "serving",
                _serve(lambda e: (e / "index" / "items.faiss").unlink()),
                names="items.faiss",
            ),  # fmt: skip
            Case("index-not-exported", "serving", _serve(plain=True), names="index=faiss"),
            Case("index-k-zero", "serving", _serve(k=0), names="k must"),
            Case("index-k-past-catalogue", "serving", _serve(k=10**6), names="k must"),
            Case("index-k-text", "serving", _serve(k="ten"), names="k must"),
        ]
    )
