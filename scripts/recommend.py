"""Serve recommendations from an export directory, as a serving process would: torch and the
standard library only (recsys need not be installed).

    python scripts/recommend.py <run>/export --user 196 --k 10

Files are checked against manifest.json (sha256) before torch loads them, through `loader.py`
(the repo's `recsys/serving/loader.py`, read by path so the recsys package is never imported;
copy it beside this script to use the script elsewhere). Unknown users get the popularity
fallback the export ships (`vocab/popular_items.txt`).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
LOADER_CANDIDATES = (HERE.parent / "recsys" / "serving" / "loader.py", HERE / "loader.py")


def import_loader():
    for path in LOADER_CANDIDATES:
        if path.is_file():
            spec = importlib.util.spec_from_file_location("export_loader", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    sys.exit(f"error: loader.py not found (looked in {', '.join(map(str, LOADER_CANDIDATES))})")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("export_dir", type=Path, help="the folder scripts/export.py wrote")
    p.add_argument("--user", required=True, help="raw user id, as in the training data")
    p.add_argument("--k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--format", choices=("torchscript", "pt2"), default=None,
                   help="which artifact to load (default: TorchScript when exported)")  # fmt: skip
    p.add_argument("--manifest-sha256", default=None,
                   help="refuse to serve unless manifest.json has this sha256")  # fmt: skip
    return p.parse_args(argv)


def describe(item_ids: list, titles: list, index: int) -> str:
    return f"{item_ids[index]}  {titles[index]}" if titles else item_ids[index]


def main(argv=None) -> int:
    args = parse_args(argv)
    loader = import_loader()
    try:
        manifest = loader.read_manifest(args.export_dir, args.manifest_sha256)
        users = loader.read_vocabulary(args.export_dir, "users", manifest)
        items = loader.read_vocabulary(args.export_dir, "items", manifest)
        titles = loader.read_vocabulary(args.export_dir, "item_titles", manifest)
        index = {raw: i for i, raw in enumerate(users)}
        if args.user not in index:
            popular = loader.read_vocabulary(args.export_dir, "popular_items", manifest)
            position = {raw: i for i, raw in enumerate(items)}
            print(
                f"user {args.user!r} is not in this export's vocabulary ({len(users)} known "
                f"users): showing the {min(args.k, len(popular))} most popular items instead"
            )
            for rank, raw in enumerate(popular[: args.k], 1):
                print(f"{rank:3d}. {describe(items, titles, position[raw])}")
            return 0
        retriever = loader.load_artifact(
            args.export_dir, "retriever", args.format, args.manifest_sha256
        )
    except loader.IntegrityError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    pt2 = args.format == "pt2" or "torchscript" not in manifest["artifacts"]["retriever"]["files"]
    user_idx = torch.tensor([index[args.user]])
    try:
        with torch.no_grad():
            scores, item_idx = retriever(user_idx, torch.tensor(args.k) if pt2 else args.k)
            shown = item_idx[0][~torch.isinf(scores[0])]  # -inf: seen items, filler at the end
            probs = None
            if "propensity" in manifest["artifacts"]:  # models with a conversion head
                fmt = "pt2" if pt2 else "torchscript"
                head = loader.load_artifact(
                    args.export_dir, "propensity", fmt, args.manifest_sha256
                )
                probs = head(user_idx.expand(shown.numel()), shown).tolist()
    except loader.IntegrityError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (RuntimeError, torch.jit.Error) as err:  # the module's own validation (k range, ...)
        print(f"error: {str(err).strip().splitlines()[-1]}", file=sys.stderr)
        return 2
    model = manifest["model"]["name"]
    print(f"top {args.k} for user {args.user} (model {model}, {manifest['data']['name']}):")
    for rank, i in enumerate(shown.tolist(), 1):
        extra = f", P(convert) {probs[rank - 1]:.3f}" if probs is not None else ""
        print(f"{rank:3d}. {describe(items, titles, i)}  (score {scores[0, rank - 1]:.4f}{extra})")
    if shown.numel() < args.k:
        print(f"(only {shown.numel()} items this user has not seen yet)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
