"""An approximate nearest-neighbour index of the export's item vectors (FAISS), for catalogues where
the exact retriever's scan of every item is too slow: `scripts/export.py run_dir=... index=faiss`.

The index holds the same (I, D) item matrix the exact retriever scores against (`embed_all` of
`item_embedding`; for MF the last column is the item bias and the user side's is a constant 1, so
an inner product is the whole score and no vector is normalised). The metric is inner product.
Files: `index/items.faiss`, `index/params.json` (kind and parameters), `index/seen.pt` (the seen
items CSR the over-fetch rule filters with, `loader.search_index`); the manifest lists them under
`artifacts.index` with the recall measured against the exact retriever on the run's test users.
faiss is imported lazily: core recsys imports and exports TorchScript without it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor

from recsys.atomic_files import write_atomic
from recsys.csr import UserItemCSR
from recsys.errors import ConfigError, ExportError
from recsys.serving import loader
from recsys.serving.topk import mask_seen_, tie_rank_buffer, topk_lowest_index_ties
from recsys.serving.verify import Case

KINDS = ("flat", "ivf_flat", "ivf_pq", "hnsw")
INT_KEYS = {  # key -> smallest value; every one may be null (derived from the catalogue)
    "nlist": 1, "nprobe": 1, "hnsw_m": 2, "ef_construction": 1, "ef_search": 1,
    "pq_m": 1, "pq_nbits": 1, "recall_users": 1,
}  # fmt: skip
RECALL_K = (10, 100)
EXTRA = 'pip install -e ".[serving]"'


def require_faiss():
    """The faiss module, or a one-line ExportError naming the extra that installs it."""
    try:
        import faiss
    except ImportError:
        raise ExportError(f"index.kind needs FAISS, which is not installed: {EXTRA}") from None
    return faiss


@dataclass(frozen=True)
class IndexSettings:
    """The `index:` block of conf/export.yaml, checked; None values are derived (`derive`)."""

    kind: str
    values: dict = field(default_factory=dict)


def index_settings(node) -> IndexSettings | None:
    """Check the `index:` config block (a mapping or None); None when no index is asked for."""
    node = dict(node or {})
    kind = node.pop("kind", None)
    if kind is None:
        return None
    if kind not in KINDS:
        raise ConfigError(f"index.kind={kind!r}: must be one of {' | '.join(KINDS)} or null")
    unknown = sorted(set(node) - set(INT_KEYS))
    if unknown:
        raise ConfigError(
            f"unknown key index.{unknown[0]}: index takes kind, {', '.join(INT_KEYS)}"
        )
    for key, value in node.items():
        bad = isinstance(value, bool) or not isinstance(value, int) or value < INT_KEYS[key]
        if value is not None and bad:
            raise ConfigError(
                f"index.{key}={value!r}: must be an integer >= {INT_KEYS[key]} or null"
            )
    if (node.get("pq_nbits") or 0) > 16:
        raise ConfigError(
            f"index.pq_nbits={node['pq_nbits']}: must be an integer in [1, 16] or null"
        )
    if node.get("nprobe") and node.get("nlist") and node["nprobe"] > node["nlist"]:
        raise ConfigError(f"index.nprobe={node['nprobe']}: must be <= index.nlist={node['nlist']}")
    require_faiss()
    return IndexSettings(kind, {k: v for k, v in node.items() if v is not None})


def derive(settings: IndexSettings, num_items: int, dim: int) -> dict:
    """Concrete parameters; the ones left null follow from the catalogue size I and the width D:

    - IVF: nlist = 4 sqrt(I), at most I / 39 (FAISS's k-means wants 39 points per centroid);
      nprobe = nlist / 8 (at least 1): about 1/8 of the catalogue is scanned, which kept recall@10
      at 0.95+ on clustered embeddings (`benchmarks/serving_scale.py`).
    - PQ: pq_m = the largest divisor of D that is <= D / 2 (two dimensions per code byte);
      pq_nbits = log2(I / 39) bits, in [1, 8] (the same 39 points per centroid).
    - HNSW: hnsw_m = 16 links per node, ef_construction = 40, ef_search = 128: recall@10 0.98 on
      100k clustered items at a third of the build time of M = 32, efConstruction = 80 (0.99), which
      matters at millions of items (the build is O(I log I) and runs at every export).
    """
    v, kind = settings.values, settings.kind
    params: dict = {"kind": kind, "metric": "inner_product", "num_items": num_items, "dim": dim}
    if kind in ("ivf_flat", "ivf_pq"):
        nlist = v.get("nlist") or max(1, min(round(4 * math.sqrt(num_items)), num_items // 39))
        if nlist > num_items:
            raise ConfigError(f"index.nlist={nlist}: must be <= the {num_items} items")
        nprobe = v.get("nprobe") or max(1, math.ceil(nlist / 8))
        if nprobe > nlist:
            raise ConfigError(f"index.nprobe={nprobe}: must be <= index.nlist={nlist}")
        params.update(nlist=nlist, nprobe=nprobe)
    if kind == "ivf_pq":
        pq_m = v.get("pq_m") or max(d for d in range(1, max(1, dim // 2) + 1) if dim % d == 0)
        if dim % pq_m:
            raise ConfigError(f"index.pq_m={pq_m}: must divide the vector width {dim}")
        nbits = v.get("pq_nbits") or min(8, max(1, int(math.log2(max(2, num_items // 39)))))
        params.update(pq_m=pq_m, pq_nbits=nbits)
    if kind == "hnsw":
        params.update(
            hnsw_m=v.get("hnsw_m") or 16,
            ef_construction=v.get("ef_construction") or 40,
            ef_search=v.get("ef_search") or 128,
        )
    return params


def build(items: Tensor, params: dict):
    """A FAISS inner-product index holding `items` (I, D) as ids 0..I-1, trained where needed.

    IVF k-means runs 10 iterations on at most 32 items per centroid (FAISS: 25 and 256): at 1M
    items 16x less work, and the same recall@10 in the trial of `benchmarks/serving_scale.py`."""
    faiss = require_faiss()
    x = items.float().contiguous().numpy()
    dim, ip, kind = x.shape[1], faiss.METRIC_INNER_PRODUCT, params["kind"]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, params["hnsw_m"], ip)
        index.hnsw.efConstruction = params["ef_construction"]
        index.hnsw.efSearch = params["ef_search"]
    else:
        quantizer = faiss.IndexFlatIP(dim)
        if kind == "ivf_flat":
            index = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], ip)
        else:
            index = faiss.IndexIVFPQ(
                quantizer, dim, params["nlist"], params["pq_m"], params["pq_nbits"], ip
            )
        index.own_fields = True
        quantizer.this.disown()  # the index owns it now (kept alive by own_fields)
        index.cp.niter, index.cp.max_points_per_centroid = 10, 32
        index.train(x)
        index.nprobe = params["nprobe"]
    index.add(x)
    return index


@torch.no_grad()
def exact_topk(vectors, seen: UserItemCSR, users: Tensor, k: int) -> Tensor:
    """The exact retriever's item ids (B, k) for `users`, -1 where only seen items were left."""
    user_vectors, items = vectors
    tie_rank, out = tie_rank_buffer(items.shape[0]), []
    chunk = max(1, min(256, (1 << 25) // items.shape[0]))  # (chunk, I) scores stay near 128 MB
    for part in users.split(chunk):
        scores = mask_seen_(user_vectors[part] @ items.T, part, seen.indptr, seen.indices)
        top, ids = topk_lowest_index_ties(scores, k, tie_rank)
        out.append(ids.masked_fill(torch.isinf(top), -1))
    return torch.cat(out)


def recall(found: Tensor, exact: Tensor) -> float:
    """Mean over users of |found & exact| / |exact| (ids >= 0 only; users with none left out)."""
    hits = []
    for f, e in zip(found.tolist(), exact.tolist(), strict=True):
        want = {i for i in e if i >= 0}
        if want:
            hits.append(len(want & {i for i in f if i >= 0}) / len(want))
    return sum(hits) / len(hits) if hits else 1.0


class BuiltIndex:
    """The index of one export: built, written into the staging folder, measured, and checked."""

    def __init__(self, settings: IndexSettings, vectors: tuple[Tensor, Tensor], seen: UserItemCSR):
        self.vectors, self.seen = vectors, seen
        num_items, dim = vectors[1].shape
        self.params = derive(settings, int(num_items), int(dim))
        started = time.perf_counter()
        self.index = build(vectors[1], self.params)
        self.build_seconds = time.perf_counter() - started

    def search(self, users: Tensor, k: int) -> list[Tensor]:
        """[scores, ids] along the serving path (`loader.search_index`, the over-fetch rule)."""
        queries = self.vectors[0][users]
        n = self.params["num_items"]
        return list(loader.search_index(self.index, queries, k, users, *self._csr(), n))

    def _csr(self) -> tuple[Tensor, Tensor]:
        return self.seen.indptr, self.seen.indices

    def write(self, folder: Path) -> dict:
        """Write index/ into the export; returns its `artifacts.index` manifest entry (so far)."""
        faiss = require_faiss()
        (folder / "index").mkdir(exist_ok=True)
        write_atomic(folder / "index" / "items.faiss", bytes(faiss.serialize_index(self.index)))
        params = {**self.params, "faiss": faiss.__version__}
        write_atomic(
            folder / "index" / "params.json", (json.dumps(params, indent=2) + "\n").encode()
        )
        torch.save({"indptr": self.seen.indptr, "indices": self.seen.indices},
                   folder / "index" / "seen.pt")  # fmt: skip
        return {
            "files": {"faiss": "index/items.faiss"},  # one entry per format, as every artifact
            "support_files": {"params": "index/params.json", "seen": "index/seen.pt"},
            "params": params,
            "build_seconds": round(self.build_seconds, 3),
            "signature": {"faiss": _signature(self.params)},
            "serving": "loader.load_index(export_dir)(user_idx, k): over-fetch k + the largest "
            "seen count of the batch's users, drop seen items, keep the first k",
            "skipped": {},
            "verification": {},
        }

    def measure(self, test_users: Tensor, max_users: int, seed: int) -> dict:
        """recall@10 and @100 of the index (with the over-fetch rule) against the exact retriever."""
        pool = torch.unique(test_users) if test_users.numel() else torch.arange(self.seen.num_rows)
        g = torch.Generator().manual_seed(seed)
        users = pool[torch.randperm(pool.numel(), generator=g)[:max_users]]
        result = {"users": int(users.numel()), "against": "the exact retriever (retriever.pt)"}
        n = self.params["num_items"]
        most = int(self.seen.row_lengths(users).max()) if users.numel() else 0
        for k in RECALL_K:
            kk = min(k, n)
            found = self.search(users, kk)[1]
            result[f"recall@{k}"] = round(
                recall(found, exact_topk(self.vectors, self.seen, users, kk)), 4
            )
            result[f"k@{k}"] = kk
            result[f"overfetch@{k}"] = min(kk + most, n)
        result["overfetch"] = (
            "k + the largest seen count among the batch's users, at most the catalogue"
        )
        return result

    def parity_case(self, users: Tensor, k: int) -> Case:
        """The fresh process must give the same answers from the written files (ids exact)."""
        k = min(k, self.params["num_items"])
        case = Case("index", exact=(False, True))
        for batch, kk in ((users, k), (users[:1], min(10, k))):
            case.inputs.append([batch, kk])
            case.expected.append(self.search(batch, kk))
        return case


def _signature(params: dict) -> dict:
    return {
        "inputs": [
            {"name": "user_idx", "dtype": "int64", "shape": ["B"]},
            {"name": "k", "dtype": "int", "shape": []},
        ],  # fmt: skip
        "outputs": [
            {
                "name": "scores",
                "dtype": "float32",
                "shape": ["B", "k"],
                "meaning": "inner products, descending; -inf where fewer than k unseen were found",
            },
            {
                "name": "item_idx",
                "dtype": "int64",
                "shape": ["B", "k"],
                "meaning": "item indices, best first; -1 where fewer than k unseen were found",
            },
        ],  # fmt: skip
        "vectors": f"{params['num_items']} x {params['dim']} float32, metric inner product",
    }


def add_index(
    settings: IndexSettings | None, staging: Path, vectors, seen, test_users, seed: int
) -> BuiltIndex | None:
    """Build and write the index when one was asked for; its manifest entry is `built.entry`."""
    if settings is None:
        return None
    built = BuiltIndex(settings, vectors, seen)
    built.entry = built.write(staging)
    built.entry["recall"] = built.measure(
        test_users, settings.values.get("recall_users", 1000), seed
    )
    return built
