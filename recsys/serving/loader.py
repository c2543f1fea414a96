"""Load an export directory safely: standard library and torch only, no recsys needed.

Copy this one file into a serving codebase (every export also ships a copy as `loader.py`).
Each file is checked against the sha256 in manifest.json before torch reads it, and an artifact
whose parity check failed at export time is refused. The manifest itself can be pinned with
`expected_manifest_sha256` (the exporter prints it), which turns the check into tamper evidence
for the whole directory rather than for single files.

    from loader import load_artifact, read_vocabulary
    retriever = load_artifact("run/export", "retriever")       # TorchScript, or pt2 if only that
    scores, items = retriever(torch.tensor([user_index]), 10)
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import torch

MANIFEST = "manifest.json"
INDEX_ARTIFACT = "index"  # the FAISS index's entry under `artifacts` (see `load_index`)


class IntegrityError(Exception):
    """A file differs from its manifest entry, is missing, or failed verification at export."""


class RequestError(ValueError):
    """A serving request the export cannot answer (k out of range, a bad user index)."""


def check_k(k, num_items: int) -> int:
    """`k` as an int in [1, num_items]; RequestError otherwise (strings, bools, floats included)."""
    if isinstance(k, bool) or not isinstance(k, int):
        try:
            k = int(str(k).strip(), 10)
        except ValueError:
            raise RequestError(f"k must be a whole number, got {k!r}") from None
    if not 1 <= k <= num_items:
        raise RequestError(f"k must be in [1, {num_items}] (the catalogue size), got {k}")
    return k


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(export_dir, expected_manifest_sha256=None) -> dict:
    path = Path(export_dir) / MANIFEST
    if not path.is_file():
        raise IntegrityError(f"{path}: no manifest; is {export_dir} an export directory?")
    if expected_manifest_sha256 is not None and _sha256(path) != expected_manifest_sha256:
        raise IntegrityError(f"{path}: sha256 differs from the pinned value")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise IntegrityError(f"{path}: not valid JSON ({err}); truncated or altered") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise IntegrityError(f"{path}: not a recsys manifest (no 'files' table of sha256)")
    return manifest


def _inside(export_dir, relative) -> Path:
    """`export_dir / relative`, refused when the name is absolute or leads out (`..`, a symlink)."""
    root = Path(export_dir)
    if not isinstance(relative, str) or not relative or "\x00" in relative:
        raise IntegrityError(f"{root / MANIFEST}: file name {relative!r} is not a relative path")
    parts = relative.replace("\\", "/").split("/")
    if relative.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts:
        raise IntegrityError(
            f"{root / MANIFEST}: file name {relative!r} leaves the export directory; refused"
        )
    path = root / relative
    if not path.resolve().is_relative_to(root.resolve()):
        raise IntegrityError(f"{path}: a symbolic link out of the export directory; refused")
    return path


def checked_path(export_dir, manifest: dict, relative: str) -> Path:
    """The path of `relative` after its sha256 matched the manifest; IntegrityError otherwise."""
    path = _inside(export_dir, relative)
    expected = manifest.get("files", {}).get(relative)
    if not isinstance(expected, str):
        raise IntegrityError(f"{path}: not listed in {MANIFEST}")
    if not path.is_file():
        raise IntegrityError(f"{path}: listed in {MANIFEST} but missing")
    actual = _sha256(path)
    if actual != expected:
        raise IntegrityError(
            f"{path}: sha256 {actual[:12]}... does not match the manifest ({expected[:12]}...); "
            "the file was altered or corrupted after export"
        )
    return path


def verify_all(export_dir, expected_manifest_sha256=None) -> dict:
    """Check every file listed in the manifest; returns the manifest."""
    manifest = read_manifest(export_dir, expected_manifest_sha256)
    for relative in manifest.get("files", {}):
        checked_path(export_dir, manifest, relative)
    return manifest


def artifact_formats(manifest: dict, name: str) -> list:
    artifacts = manifest.get("artifacts")
    entry = artifacts.get(name) if isinstance(artifacts, dict) else None
    if entry is None:
        return []
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise IntegrityError(f"{MANIFEST}: artifacts.{name} has no 'files' table")
    return sorted(entry["files"])


def artifact_path(
    export_dir, name: str, fmt=None, expected_manifest_sha256=None, allow_unverified=False
) -> tuple:
    """(format, path) of an artifact after its parity result and sha256 were checked.

    `fmt=None` prefers TorchScript, then pt2, when the export has several formats. pt2 modules
    take tensors only (`k` as a 0-d int64 tensor).
    """
    if name == INDEX_ARTIFACT:
        raise IntegrityError(
            f"{export_dir}: the ANN index loads with load_index, not load_artifact"
        )
    manifest = read_manifest(export_dir, expected_manifest_sha256)
    formats = artifact_formats(manifest, name)
    if not formats:
        have = sorted(manifest.get("artifacts", {}))
        raise IntegrityError(f"{export_dir}: no artifact {name!r} (this export has {have})")
    # torch modules first: `onnx` (an onnxruntime session, called differently) only when asked
    fmt = fmt or next((f for f in ("torchscript", "pt2") if f in formats), formats[0])
    if fmt not in formats:
        raise IntegrityError(f"{export_dir}: {name} was not exported as {fmt} (only {formats})")
    entry = manifest["artifacts"][name]
    check = (entry.get("verification") or {}).get(fmt, {})
    if not allow_unverified and check.get("passed") is not True:
        raise IntegrityError(
            f"{export_dir}: {name} ({fmt}) did not pass its parity check at export: {check}"
        )
    return fmt, checked_path(export_dir, manifest, entry["files"][fmt])


def load_artifact(
    export_dir,
    name: str = "retriever",
    fmt=None,
    expected_manifest_sha256=None,
    allow_unverified: bool = False,
    map_location: str = "cpu",
):
    """A callable module: TorchScript (`torch.jit.load`) or pt2 (`torch.export.load(...).module()`);
    for `fmt="onnx"`, an onnxruntime InferenceSession (see `load_onnx`).

    `fmt=None` prefers TorchScript when the export has both. pt2 modules take tensors only
    (`k` as a 0-d int64 tensor).
    """
    fmt, path = artifact_path(export_dir, name, fmt, expected_manifest_sha256, allow_unverified)
    if fmt == "onnx":
        return _onnx_session(path)
    if fmt == "torchscript":
        with warnings.catch_warnings():  # torch.jit is deprecated upstream; pt2 is the way out
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=map_location)
    return torch.export.load(str(path)).module()


def load_onnx(
    export_dir,
    name="retriever",
    expected_manifest_sha256=None,
    allow_unverified=False,
    providers=None,
):
    """`<name>.onnx` as an onnxruntime InferenceSession, opened only after its sha256 matched.

    Feed numpy arrays by input name: `session.run(None, {"user_idx": users, "k": np.int64(10)})`.
    A row whose index is out of range comes back as NaN (and item id -1): ONNX has no assert.
    onnxruntime is imported here only, so the loader itself needs nothing beyond torch.
    """
    _, path = artifact_path(export_dir, name, "onnx", expected_manifest_sha256, allow_unverified)
    return _onnx_session(path, providers)


def _onnx_session(path: Path, providers=None):
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            f"{path}: opening an ONNX artifact needs onnxruntime (pip install onnxruntime)"
        ) from None
    return onnxruntime.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])


def read_vocabulary(export_dir, name: str, manifest=None) -> list:
    """Lines of a vocabulary file named in the manifest (`users`, `items`, `item_titles`, ...):
    line i belongs to index i (for `popular_items`, line i is the i-th most popular raw item id).

    UTF-8, one id per "\n"-terminated line, split on "\n" alone: an id keeps its spaces, tabs and
    characters such as U+2028 that `str.splitlines()` would take for line ends."""
    manifest = manifest or read_manifest(export_dir)
    vocab = manifest.get("vocab")
    relative = vocab.get(name) if isinstance(vocab, dict) else None
    if relative is None:
        return []
    path = checked_path(export_dir, manifest, relative)
    try:
        return path.read_bytes().decode("utf-8").split("\n")[:-1]
    except UnicodeDecodeError as err:
        raise IntegrityError(f"{path}: not UTF-8 ({err})") from None


# The ANN index (`index/items.faiss`, index=faiss); faiss is imported inside `load_index` only.


def overfetch(k: int, seen_counts: torch.Tensor, num_items: int) -> int:
    """How many neighbours to ask the index for: k + the largest seen count in the batch, at most
    the catalogue. Every seen item can then be dropped and k unseen items still remain, as in
    the exact retriever (which ranks seen items last)."""
    most = int(seen_counts.max()) if seen_counts.numel() else 0
    return min(k + most, num_items)


def search_index(index, queries, k: int, users, indptr, indices, num_items: int):
    """Top-k (scores float32[B, k], item_idx int64[B, k]) of the (B, D) `queries` from a FAISS
    inner-product index, without the seen items of `users` (rows of the CSR `indptr`, `indices`).

    The rule of the exact retriever: seen items never come before an unseen one; best first, ties
    to the lower item index. Asks for `overfetch(...)` neighbours, drops seen items and the -1 a
    FAISS index returns when it found fewer, keeps the first k. Where fewer than k remain, the row
    ends in score -inf and item -1 (the exact retriever shows seen items there instead)."""
    users = users.long()
    starts, lengths = indptr[users], indptr[users + 1] - indptr[users]
    n = overfetch(k, lengths, num_items)
    scores, ids = index.search(queries.float().contiguous().numpy(), n)
    scores, ids = torch.from_numpy(scores).float(), torch.from_numpy(ids).long()  # (B, n)
    rows = torch.repeat_interleave(torch.arange(users.numel()), lengths)
    offsets = torch.arange(rows.numel()) - torch.repeat_interleave(
        lengths.cumsum(0) - lengths, lengths
    )
    seen = indices[torch.repeat_interleave(starts, lengths) + offsets]
    seen_keys = rows * (num_items + 1) + seen
    keys = torch.arange(users.numel()).unsqueeze(1) * (num_items + 1) + ids.clamp(min=0)
    drop = (ids < 0) | torch.isin(keys, seen_keys)
    scores = scores.masked_fill(drop, float("-inf"))
    ids = ids.masked_fill(drop, num_items)  # dropped entries sort after every real index
    ids, perm = torch.sort(ids, dim=1)  # then a stable sort by score: ties to the lower index
    scores, order = torch.sort(scores.gather(1, perm), dim=1, descending=True, stable=True)
    ids = ids.gather(1, order)[:, :k].masked_fill(torch.isinf(scores[:, :k]), -1)
    return scores[:, :k], ids


class IndexRetriever:
    """`retriever(user_idx int64[B], k)` -> (scores, item_idx) from the FAISS index, seen items
    removed (`search_index`); `search_vectors(vectors, k, user_idx)` for vectors of your own
    (`user_encoder` output). Approximate: `manifest.json` `artifacts.index.recall` says how close."""

    def __init__(self, index, user_encoder, indptr, indices, num_items: int):
        self.index, self.user_encoder = index, user_encoder
        self.indptr, self.indices, self.num_items = indptr, indices, num_items

    def search_vectors(self, vectors, k, user_idx):
        k = check_k(k, self.num_items)
        return search_index(
            self.index, vectors, k, user_idx, self.indptr, self.indices, self.num_items
        )

    def __call__(self, user_idx, k):
        with torch.no_grad():
            vectors = self.user_encoder(user_idx)  # validates the indices, as the retriever does
        return self.search_vectors(vectors, k, user_idx)


def load_index(export_dir, expected_manifest_sha256=None, allow_unverified: bool = False):
    """An `IndexRetriever` over `index/items.faiss`; every file it reads passes its sha256 check
    before FAISS or torch sees it. Needs `pip install faiss-cpu` (RequestError without)."""
    manifest = read_manifest(export_dir, expected_manifest_sha256)
    entry = (manifest.get("artifacts") or {}).get(INDEX_ARTIFACT)
    if not isinstance(entry, dict) or not isinstance(entry.get("files"), dict):
        raise IntegrityError(f"{export_dir}: no ANN index (export with index=faiss)")
    check = (entry.get("verification") or {}).get("faiss", {})
    if not allow_unverified and check.get("passed") is not True:
        raise IntegrityError(f"{export_dir}: index did not pass its check at export: {check}")
    listed = {**(entry.get("support_files") or {}), "faiss": entry["files"].get("faiss")}
    files = {name: checked_path(export_dir, manifest, rel) for name, rel in listed.items()}
    try:
        import faiss
    except ImportError:
        raise RequestError("this export's index needs FAISS: pip install faiss-cpu") from None
    params = json.loads(files["params"].read_bytes().decode("utf-8"))
    index = faiss.read_index(str(files["faiss"]))
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    if "ef_search" in params:
        faiss.downcast_index(index).hnsw.efSearch = int(params["ef_search"])
    seen = torch.load(files["seen"], weights_only=True)
    formats = artifact_formats(manifest, "user_encoder")
    fmt = "torchscript" if "torchscript" in formats else None
    encoder = load_artifact(
        export_dir, "user_encoder", fmt, expected_manifest_sha256, allow_unverified
    )
    return IndexRetriever(index, encoder, seen["indptr"], seen["indices"], int(index.ntotal))
