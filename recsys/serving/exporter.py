"""Export a trained run for serving: `<run>/export/` with TorchScript (and/or pt2) artifacts,
vocabularies, a popularity fallback, a copy of the loader, and manifest.json.

The export reads the run directory only (`RunDir`), never the training data files: sizes and side
features come with the scorer, seen items and popularity counts from `training_state.pt`, ids from
`vocab/`. Nothing is published until every artifact has passed its parity check in a fresh process
without recsys (`verify.py`): the export is written to a staging folder and renamed into place on
success; on failure it is kept beside it as `<out>.failed/` and `ExportError` says what differed.
Only an earlier recsys export is ever replaced (`publish.py`): a user's folder is refused, whole.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from recsys.atomic_files import write_atomic
from recsys.errors import ConfigError, ExportError
from recsys.run_dir import SPLITS, RunDir, TrainedRun, encode_vocabulary
from recsys.serving import ann_index, artifacts, extra_formats, publish
from recsys.serving.manifest import describe, signature, write_manifest
from recsys.serving.verify import verify

log = logging.getLogger(__name__)
FORMATS = ("torchscript", "pt2")


def run_vocabularies(run: RunDir, scorer) -> dict[str, list[str]]:
    """users, items (and item_titles) of the run; each must have one id per index of the scorer."""
    vocab = {name: run.vocabulary(name) for name in ("users", "items")}
    if run.has_vocabulary("item_titles"):
        vocab["item_titles"] = run.vocabulary("item_titles")
    sizes = {"users": scorer.num_users, "items": scorer.num_items, "item_titles": scorer.num_items}
    for name, ids in vocab.items():
        if len(ids) != sizes[name]:
            raise ExportError(
                f"{run.vocab_dir / name}.txt: {len(ids)} lines for the model's {sizes[name]} "
                f"{'items' if name == 'item_titles' else name}; the vocabularies do not belong to "
                "this run's model"
            )
    return vocab


def write_export_vocabularies(
    folder: Path, vocab: dict[str, list[str]], popular: torch.Tensor
) -> dict[str, str]:
    """vocab/<name>.txt of the export, encoded as the run's own (`encode_vocabulary`), plus
    popular_items.txt; returns the manifest's `vocab` entry."""
    files = {**vocab, "popular_items": [vocab["items"][i] for i in popular.tolist()]}
    for name, ids in files.items():
        write_atomic(folder / "vocab" / f"{name}.txt", encode_vocabulary(ids, name))
    return {name: f"vocab/{name}.txt" for name in files}


def export_run(
    run: TrainedRun,
    out_dir: str | Path,
    formats: list[str] | tuple[str, ...] = ("torchscript",),
    exclude: list[str] | tuple[str, ...] = ("train", "valid"),
    num_popular: int = 1000,
    verify_users: int = 256,
    verify_k: int = 100,
    atol: float = 1e-5,
    seed: int = 0,
    propensity: nn.Module | None = None,
    index: ann_index.IndexSettings | None = None,
    onnx: bool = True,
    triton: bool = False,
    triton_max_batch_size: int = 1024,
) -> dict:
    """Write and verify the export of `run`; returns the manifest (its sha256 under `sha256`).

    `exclude` names the splits whose items each user never gets again (train + valid, as at test
    time in evaluation). `propensity` overrides the scorer's `propensity_module()` hook. `index`
    (`ann_index.index_settings`) adds a FAISS index of the item vectors beside the artifacts,
    `onnx` `<name>.onnx` files (`onnx_export.py`), `triton` a Triton model repository
    (`triton_repo.py`).
    """
    bad = [f for f in formats if f not in FORMATS] + [s for s in exclude if s not in SPLITS]
    if bad or not formats:
        raise ExportError(f"unknown format or split {bad}: formats {FORMATS}, splits {SPLITS}")
    for key, value in (
        ("num_popular", num_popular),
        ("verify.users", verify_users),
        ("verify.k", verify_k),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}={value!r}: must be a whole number >= 1")
    if isinstance(atol, bool) or not isinstance(atol, int | float) or not atol >= 0:
        raise ConfigError(f"verify.atol={atol!r}: must be a number >= 0")
    extra_formats.check_flags(formats, onnx, triton, triton_max_batch_size)
    out_dir = Path(out_dir).absolute()  # the fresh verification process runs elsewhere
    publish.check_target(out_dir)  # before the work: a user's folder is refused at once
    scorer, run_dir = run.scorer.eval(), run.run_dir
    vocab = run_vocabularies(run_dir, scorer)
    if propensity is None:
        propensity = artifacts.propensity_module_of(scorer)
    propensity = propensity.eval() if propensity is not None else None
    pairs = {s: run_dir.seen_pairs(s) for s in SPLITS}
    excluded = [pairs[s] for s in exclude]
    seen = artifacts.seen_items(excluded, scorer.num_users)
    vectors = (
        artifacts.embed_all(scorer.user_embedding, scorer.num_users),  # (U, D)
        artifacts.embed_all(scorer.item_embedding, scorer.num_items),  # (I, D)
    )
    for side, v in zip(("user", "item"), vectors, strict=True):
        if not bool(torch.isfinite(v).all()):
            bad_rows = int((~torch.isfinite(v)).any(1).sum())
            raise ExportError(f"{bad_rows} {side} embeddings hold NaN or inf: the model diverged")

    staging = publish.make_staging(out_dir)
    try:  # staging is renamed away on success and on failed parity; anything else removes it
        popular = artifacts.popular_items(excluded, scorer.num_items, num_popular)
        vocab_files = write_export_vocabularies(staging, vocab, popular)
        shutil.copyfile(Path(__file__).with_name("loader.py"), staging / "loader.py")
        entries: dict[str, dict] = {}
        built = {}
        for fmt in formats:
            built[fmt] = artifacts.build_modules(scorer, vectors, seen, propensity, fmt == "pt2")
            for name, module in built[fmt].items():
                _save(entries, module, name, fmt, staging, scorer, int(vectors[1].shape[1]))
        ann = ann_index.add_index(index, staging, vectors, seen, pairs["test"][0], seed)
        if ann is not None:
            entries["index"] = ann.entry
        manifest = {
            **describe(run, seen, exclude, vectors),
            "artifacts": entries,
            "vocab": vocab_files,
        }
        dim = int(vectors[1].shape[1])
        extra_formats.write(
            manifest, built, staging, scorer, dim, onnx, triton, triton_max_batch_size
        )
        write_manifest(staging, manifest)  # hashes first: the fresh process loads through them
        test, train = pairs["test"], pairs["train"]
        users = artifacts.sample_users(test[0], train[0], scorer.num_users, verify_users, seed)
        exposures = test if test[0].numel() else train
        cases = artifacts.parity_cases(scorer, seen, propensity, exposures, users, verify_k, seed)
        cases = extra_formats.with_cases(cases, entries)
        if ann is not None:
            cases["index"] = ann.parity_case(users, verify_k)
        _verify_and_publish(manifest, cases, staging, out_dir, atol)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("export written to %s; manifest sha256 %s", out_dir, manifest["sha256"])
    return manifest


def _save(entries, module, name, fmt, folder, scorer, dim) -> None:
    """Save one artifact and record its file and signature (or why pt2 could not take it)."""
    entry = entries.setdefault(
        name, {"files": {}, "signature": {}, "skipped": {}, "verification": {}}
    )
    try:
        path = artifacts.save_module(module, name, fmt, folder)
    except Exception as err:  # noqa: BLE001  (the model decides what compiles)
        if fmt == "pt2" and name != "retriever":
            entry["skipped"][fmt] = f"{type(err).__name__}: {str(err)[:500]}"
            log.warning("%s: not exportable as pt2 (%s); skipped", name, err)
            return
        raise ExportError(
            f"{name}: {type(scorer).__name__} does not compile as {fmt}: {err}"
        ) from err
    entry["files"][fmt] = path.name
    entry["signature"][fmt] = signature(name, fmt, scorer.num_users, scorer.num_items, dim)


def _verify_and_publish(manifest: dict, cases, staging: Path, out_dir: Path, atol: float) -> None:
    """Parity in a fresh process; publish as `out_dir` if all passed, else keep `<out>.failed`."""
    entries = manifest["artifacts"]
    keys = {f"{n}:{f}": (n, f) for n, e in entries.items() for f in e["files"]}
    results = verify(
        staging,
        {k: cases[n] for k, (n, _) in keys.items()},
        {k: f for k, (_, f) in keys.items()},
        atol,
    )
    for key, (name, fmt) in keys.items():
        entries[name]["verification"][fmt] = results[key]
    manifest["sha256"] = write_manifest(staging, manifest)
    failed = {k: r for k, r in results.items() if not r["passed"]}
    if not failed:
        publish.publish(staging, out_dir)
        return
    target = publish.keep_failed(staging, out_dir)
    hint = ""
    if any(key.startswith("retriever:") for key in failed):
        hint = (
            " The retriever ranks by user_embedding(u) @ item_embedding(i).T over precomputed "
            "vectors; a scorer whose score_all_items differs (a temperature, a term outside "
            "the embeddings) must fold that into its embeddings."
        )
    raise ExportError(
        f"parity check failed for {sorted(failed)} (kept in {target}): {json.dumps(failed)}.{hint}"
    )


def export_run_dir(cfg: DictConfig) -> Path:
    """The run an export config names: run_dir, or the run directory holding ckpt_path."""
    if cfg.get("run_dir"):
        return Path(cfg.run_dir).absolute()
    return Path(cfg.ckpt_path).absolute().resolve().parents[1]


def export_from_config(cfg: DictConfig) -> tuple[Path, dict]:
    """The `scripts/export.py` entry: resolve the run and checkpoint, export, return (dir, manifest)."""
    if not cfg.get("run_dir") and not cfg.get("ckpt_path"):
        raise ExportError("say what to export: run_dir=<run directory> or ckpt_path=<file.ckpt>")
    # Every path is the user's, relative to where they stand: resolved here, once.
    ckpt = Path(cfg.ckpt_path).absolute() if cfg.get("ckpt_path") else None
    run_dir = export_run_dir(cfg)
    if ckpt is not None and not ckpt.is_file():
        raise ExportError(f"{ckpt}: checkpoint not found")
    if not run_dir.is_dir():
        what = "is a file, not a run directory" if run_dir.exists() else "run directory not found"
        raise ExportError(f"{run_dir}: {what}; pass run_dir=<the folder scripts/train.py wrote>")
    if not RunDir(run_dir).config_path.is_file():
        raise ExportError(
            f"{run_dir}: not a recsys run directory (no .hydra/resolved.yaml); an export needs the "
            "run's config and vocabularies: pass run_dir= with ckpt_path="
        )
    if cfg.format not in (*FORMATS, "both"):
        raise ExportError(f"format={cfg.format!r}: one of {FORMATS} or both")
    out_dir = Path(cfg.out_dir).absolute() if cfg.get("out_dir") else run_dir / "export"
    publish.check_target(out_dir)  # before loading the model: a user's folder is refused at once
    index = ann_index.index_settings(cfg.get("index"))  # a bad index.* key, or no faiss: now
    run = RunDir(run_dir).load(str(ckpt) if ckpt else cfg.checkpoint, cfg.map_location)
    formats = list(FORMATS) if cfg.format == "both" else [cfg.format]
    manifest = export_run(
        run,
        out_dir,
        formats,
        list(cfg.exclude),
        cfg.num_popular,
        cfg.verify.users,
        cfg.verify.k,
        cfg.verify.atol,
        cfg.seed,
        index=index,
        onnx=cfg.get("onnx", True),
        triton=cfg.get("triton", False),
        triton_max_batch_size=cfg.get("triton_max_batch_size", 1024),
    )
    return out_dir, manifest
