"""Serve recommendations from an export directory, as a serving process would: torch and the
standard library only (recsys need not be installed).

    python scripts/recommend.py <run>/export --user 196 --k 10 --manifest-sha256 <hash>

Files are checked against manifest.json (sha256) before torch loads them, through `loader.py`
(recsys's own where recsys is installed, else the repo's `recsys/serving/loader.py` read by path,
or a `loader.py` copied beside this script). The manifest itself is pinned with
`--manifest-sha256` or `RECSYS_MANIFEST_SHA256` (the hash `scripts/export.py` prints): unpinned,
a rewritten export would be served, so this says so on stderr. Unknown users get the popularity
fallback the export ships (`vocab/popular_items.txt`). `--index` answers from the export's FAISS
index (`index=faiss` at export; needs faiss-cpu) instead of the exact scan of every item.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
LOADER_CANDIDATES = (HERE.parent / "recsys" / "serving" / "loader.py", HERE / "loader.py")
PIN_ENV = "RECSYS_MANIFEST_SHA256"


def import_loader():
    try:  # recsys's own module: its errors are the ones recsys.cli explains
        from recsys.serving import loader

        return loader
    except ImportError:
        pass
    for path in LOADER_CANDIDATES:
        if path.is_file():
            spec = importlib.util.spec_from_file_location("export_loader", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    sys.exit(f"error: loader.py not found (looked in {', '.join(map(str, LOADER_CANDIDATES))})")


def explainer(loader):
    """`recsys.cli.run_or_explain` where recsys is installed; the same one-line behaviour without."""
    try:
        from recsys.cli import run_or_explain

        return run_or_explain
    except ImportError:
        pass

    def run_or_explain(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (loader.IntegrityError, loader.RequestError) as err:
            print("error: " + " ".join(str(err).split()), file=sys.stderr)
            sys.exit(2)

    return run_or_explain


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export_dir", type=Path, help="the folder scripts/export.py wrote")
    p.add_argument("--user", required=True, help="raw user id, as in the training data")
    p.add_argument("--k", default="10", help="how many items, 1 to the catalogue size (default 10)")
    p.add_argument("--format", choices=("torchscript", "pt2"), default=None,
                   help="which artifact to load (default: TorchScript when exported)")  # fmt: skip
    p.add_argument("--index", action="store_true",
                   help="answer from the FAISS index (index/items.faiss) instead of the exact scan")  # fmt: skip
    p.add_argument("--manifest-sha256", default=os.environ.get(PIN_ENV),
                   help=f"refuse to serve unless manifest.json has this sha256 (default ${PIN_ENV})")  # fmt: skip
    return p.parse_args(argv)


@dataclass
class Recommendation:
    """What `recommend` found: raw item ids best first, with scores (None for the fallback)."""

    user: str
    known: bool
    items: list
    titles: list
    scores: list | None = None
    probabilities: list | None = None
    known_users: int = 0
    model: str = ""
    data: str = ""


def recommend(loader, export_dir, user: str, k, fmt=None, pin=None, ann=False) -> Recommendation:
    """Top-k for the raw id `user`; the popularity fallback for an unknown one. `ann`: from the
    FAISS index (`loader.load_index`: seen items dropped by the over-fetch rule), not the scan.

    Raises `loader.IntegrityError` (an altered export) or `loader.RequestError` (a bad `k`)."""
    if isinstance(user, bool) or not isinstance(user, str | int):
        raise loader.RequestError(f"user must be a raw user id (text), got {user!r}")
    user = str(user)
    manifest = loader.read_manifest(export_dir, pin)
    users = loader.read_vocabulary(export_dir, "users", manifest)
    items = loader.read_vocabulary(export_dir, "items", manifest)
    titles = loader.read_vocabulary(export_dir, "item_titles", manifest)
    k = loader.check_k(k, len(items))
    model, data = manifest.get("model", {}), manifest.get("data", {})
    found = Recommendation(str(user), False, [], titles, known_users=len(users),
                           model=str(model.get("name")), data=str(data.get("name")))  # fmt: skip
    index = {raw: i for i, raw in enumerate(users)}
    if user not in index:
        found.items = loader.read_vocabulary(export_dir, "popular_items", manifest)[:k]
        position = {raw: i for i, raw in enumerate(items)}
        if any(raw not in position for raw in found.items):
            raise loader.IntegrityError(f"{export_dir}: vocab/popular_items holds an unknown item")
        found.titles = [titles[position[raw]] for raw in found.items] if titles else []
        return found
    formats = loader.artifact_formats(manifest, "retriever")
    fmt = fmt or ("torchscript" if "torchscript" in formats else None)
    pt2 = not ann and (fmt == "pt2" or "torchscript" not in formats)
    if (
        ann
    ):  # the FAISS index takes k as an int and returns -inf / -1 past the unseen items it found
        retriever = loader.load_index(export_dir, pin)
    else:
        retriever = loader.load_artifact(export_dir, "retriever", fmt, pin)
    user_idx = torch.tensor([index[user]])
    try:
        with torch.no_grad():
            scores, item_idx = retriever(user_idx, torch.tensor(k) if pt2 else k)
            keep = ~torch.isinf(scores[0])  # -inf: seen items, filler at the end
            shown = item_idx[0][keep]
            if loader.artifact_formats(manifest, "propensity"):  # models with a conversion head
                head = loader.load_artifact(export_dir, "propensity", "pt2" if pt2 else None, pin)
                found.probabilities = head(user_idx.expand(shown.numel()), shown).tolist()
    except (RuntimeError, torch.jit.Error) as err:  # the module's own validation
        raise loader.RequestError(str(err).strip().splitlines()[-1]) from None
    if any(i >= len(items) for i in shown.tolist()):
        raise loader.IntegrityError(
            f"{export_dir}: the retriever returned an index past vocab/items"
        )
    found.known, found.scores = True, scores[0][keep].tolist()
    found.items = [items[i] for i in shown.tolist()]
    found.titles = [titles[i] for i in shown.tolist()] if titles else []
    return found


def _line(rank: int, item: str, title: str | None, extra: str = "") -> str:
    return f"{rank:3d}. {item}  {title}{extra}" if title else f"{rank:3d}. {item}{extra}"


def show(rec: Recommendation, k: int) -> None:
    if not rec.known:
        print(
            f"user {rec.user!r} is not in this export's vocabulary ({rec.known_users} known "
            f"users): showing the {len(rec.items)} most popular items instead"
        )
        for rank, raw in enumerate(rec.items, 1):
            print(_line(rank, raw, rec.titles[rank - 1] if rec.titles else None))
        return
    print(f"top {k} for user {rec.user} (model {rec.model}, {rec.data}):")
    for rank, raw in enumerate(rec.items, 1):
        extra = f"  (score {rec.scores[rank - 1]:.4f}"
        if rec.probabilities is not None:
            extra += f", P(convert) {rec.probabilities[rank - 1]:.3f}"
        print(_line(rank, raw, rec.titles[rank - 1] if rec.titles else None, extra + ")"))
    if len(rec.items) < k:
        print(f"(only {len(rec.items)} items this user has not seen yet)")


def main(argv=None) -> int:
    args = parse_args(argv)
    loader = import_loader()
    if not args.manifest_sha256:
        print(
            "warning: manifest.json is not pinned, so a rewritten export would be served: pass "
            f"--manifest-sha256 <the hash scripts/export.py printed> or set {PIN_ENV}",
            file=sys.stderr,
        )
    rec = explainer(loader)(
        recommend,
        loader,
        args.export_dir,
        args.user,
        args.k,
        args.format,
        args.manifest_sha256,
        args.index,
    )
    show(rec, int(args.k))
    return 0


if __name__ == "__main__":
    sys.exit(main())
