"""The FAISS index of an export (`index=faiss`): the over-fetch rule gives the exact retriever's
top-k whenever the index finds exact neighbours; it is exported, verified and served without
recsys; a tampered index file is refused; every kind builds with derived parameters."""

from __future__ import annotations

import json
import runpy
import shutil
import sys

import pytest
import torch

pytest.importorskip("faiss", reason='faiss-cpu is not installed (pip install -e ".[serving]")')

from recsys.csr import UserItemCSR  # noqa: E402
from recsys.errors import ConfigError, ExportError  # noqa: E402
from recsys.serving import ann_index, loader  # noqa: E402
from tests.conftest import ROOT  # noqa: E402
from tests.serving_support import exported, flip_one_byte, fresh_python, trained_run  # noqa: E402


def clustered(num_items: int, dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(16, dim, generator=g)
    return centres[torch.randint(16, (num_items,), generator=g)] + 0.3 * torch.randn(
        num_items, dim, generator=g
    )


def test_flat_index_with_seen_items_removed_gives_the_exact_top_k():
    g = torch.Generator().manual_seed(1)
    users, items = torch.randn(40, 8, generator=g), torch.randn(300, 8, generator=g)
    # User 0 has seen 290 of 300 items (fewer unseen than k), user 1 every item; the rest a few.
    pairs = [(0, i) for i in range(290)] + [(1, i) for i in range(300)]
    pairs += [(u, int(i)) for u in range(2, 40) for i in torch.randint(300, (25,), generator=g)]
    rows, cols = torch.tensor(pairs).T
    seen = UserItemCSR.from_pairs(rows, cols, 40)
    index = ann_index.build(items, {"kind": "flat"})
    batch = torch.arange(40)
    for k in (1, 10, 20):
        scores, found = loader.search_index(index, users, k, batch, seen.indptr, seen.indices, 300)
        exact = ann_index.exact_topk((users, items), seen, batch, k)
        assert torch.equal(found, exact)  # -1 where only seen items were left, as in the exact path
        assert bool(torch.isinf(scores[1]).all()) and int((found[0] >= 0).sum()) == min(k, 10)


def test_overfetch_is_k_plus_the_most_seen_items_in_the_batch_at_most_the_catalogue():
    assert loader.overfetch(10, torch.tensor([3, 57, 0]), 1000) == 67
    assert loader.overfetch(10, torch.tensor([995]), 1000) == 1000
    assert loader.overfetch(5, torch.tensor([], dtype=torch.long), 1000) == 5


@pytest.mark.parametrize("kind", ann_index.KINDS)
def test_every_kind_builds_with_parameters_derived_from_the_catalogue(kind):
    items = clustered(4000, 24)
    params = ann_index.derive(ann_index.IndexSettings(kind), 4000, 24)
    index = ann_index.build(items, params)
    assert index.ntotal == 4000 and params["metric"] == "inner_product"
    if kind.startswith("ivf"):
        assert params["nlist"] == min(round(4 * 4000**0.5), 4000 // 39) == 102
        assert params["nprobe"] == 13 and index.nprobe == 13
    if kind == "ivf_pq":
        assert params["pq_m"] == 12 and params["pq_nbits"] == 6  # 24 = 12 x 2; log2(4000 / 39)
    if kind == "hnsw":
        assert (params["hnsw_m"], params["ef_construction"], params["ef_search"]) == (16, 40, 128)
    found = torch.from_numpy(index.search(items[:50].numpy(), 10)[1])
    exact = torch.topk(items[:50] @ items.T, 10).indices
    assert ann_index.recall(found, exact) > (0.99 if kind == "flat" else 0.3)


@pytest.mark.parametrize(
    ("block", "names"),
    [
        ({"kind": "annoy"}, "index.kind='annoy'"),
        ({"kind": "ivf_flat", "nprobe": 0}, "index.nprobe=0"),
        ({"kind": "ivf_flat", "nlist": 4, "nprobe": 8}, "index.nprobe=8"),
        ({"kind": "hnsw", "ef_search": 2.5}, "index.ef_search=2.5"),
        ({"kind": "ivf_pq", "pq_nbits": 17}, "index.pq_nbits=17"),
        ({"kind": "hnsw", "efsearch": 64}, "index.efsearch"),
    ],
)
def test_a_bad_index_setting_is_one_config_error_naming_the_key(block, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.").replace("'", ".")):
        ann_index.index_settings(block)


def test_pq_m_that_does_not_divide_the_width_is_refused_by_key():
    settings = ann_index.index_settings({"kind": "ivf_pq", "pq_m": 5})
    with pytest.raises(ConfigError, match=r"index\.pq_m=5: must divide the vector width 24"):
        ann_index.derive(settings, 4000, 24)


def test_without_faiss_an_index_is_one_export_error_naming_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    assert ann_index.index_settings({"kind": None}) is None  # no index asked: faiss not needed
    with pytest.raises(ExportError, match=r'pip install -e "\.\[serving\]"') as err:
        ann_index.index_settings({"kind": "hnsw"})
    assert "\n" not in str(err.value)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A tiny MF run exported with a flat index (exact: the answers must equal the retriever's),
    ONNX files (the default) and the Triton layout: every way to serve it, in one export."""
    run = trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")
    out, manifest = exported(run, tmp_path_factory.mktemp("ann") / "export", "index=faiss",
                             "index.kind=flat", "triton=true")  # fmt: skip
    return out, manifest


def test_export_with_a_flat_index_records_exact_recall_and_passes_the_fresh_process(indexed):
    out, manifest = indexed
    entry = manifest["artifacts"]["index"]
    assert entry["recall"]["recall@10"] == entry["recall"]["recall@100"] == 1.0
    assert entry["recall"]["users"] > 0 and entry["recall"]["overfetch@10"] > 10
    check = entry["verification"]["faiss"]
    assert check["passed"] and check["ids_identical"]
    assert check["process"]["recsys_importable"] is False
    assert (
        loader.verify_all(out)["files"]["index/items.faiss"]
        == manifest["files"]["index/items.faiss"]
    )
    assert json.loads((out / "index" / "params.json").read_text())["dim"] == 65  # 64 + MF's bias


def test_index_onnx_and_triton_served_without_recsys_give_the_exact_retrievers_answers(
    indexed, tmp_path
):
    out, _ = indexed
    script = tmp_path / "serve.py"
    script.write_text(
        "import importlib.util, json, sys, numpy as np, torch\n"
        "assert importlib.util.find_spec('recsys') is None\n"
        "spec = importlib.util.spec_from_file_location('loader', sys.argv[1] + '/loader.py')\n"
        "loader = importlib.util.module_from_spec(spec); spec.loader.exec_module(loader)\n"
        "users = torch.arange(50)\n"
        "_, by_index = loader.load_index(sys.argv[1])(users, 10)\n"
        "onnx = loader.load_onnx(sys.argv[1], 'retriever')\n"
        "by_onnx = onnx.run(None, {'user_idx': users.numpy(), 'k': np.array(10)})[1]\n"
        "triton = torch.jit.load(sys.argv[1] + '/triton/retriever_torchscript/1/model.pt')\n"
        "by_triton = triton(users, torch.tensor([10]))[1]\n"
        "print(json.dumps([by_index.tolist(), by_onnx.tolist(), by_triton.tolist()]))\n"
    )
    done = fresh_python(str(script), str(out))
    assert done.returncode == 0, done.stderr
    scores, exact = loader.load_artifact(out, "retriever")(torch.arange(50), 10)
    by_index, by_onnx, by_triton = json.loads(done.stdout.strip().splitlines()[-1])
    assert by_onnx == by_triton == exact.tolist()
    assert by_index == exact.masked_fill(torch.isinf(scores), -1).tolist()


def test_recommend_with_index_gives_the_same_items_as_the_exact_scan(indexed):
    out, _ = indexed
    recommend = runpy.run_path(str(ROOT / "scripts" / "recommend.py"))["recommend"]
    user = loader.read_vocabulary(out, "users")[3]
    by_index = recommend(loader, out, user, 10, ann=True)
    exact = recommend(loader, out, user, 10)
    assert by_index.items == exact.items and by_index.known
    assert by_index.scores == pytest.approx(exact.scores, abs=1e-5)


@pytest.mark.parametrize("relative", ["index/items.faiss", "index/seen.pt", "index/params.json"])
def test_a_tampered_index_file_is_refused_before_it_is_read(indexed, tmp_path, relative):
    out, _ = indexed
    copy = tmp_path / "export"
    shutil.copytree(out, copy)
    flip_one_byte(copy / relative)
    with pytest.raises(loader.IntegrityError, match=relative.split("/")[-1]):
        loader.load_index(copy)


def test_the_index_is_not_loaded_as_a_torch_artifact(indexed):
    with pytest.raises(loader.IntegrityError, match="load_index"):
        loader.load_artifact(indexed[0], "index")


def test_recommend_script_with_index_prints_the_exact_scans_items_without_recsys(indexed):
    out, _ = indexed
    user = loader.read_vocabulary(out, "users")[5]
    script = str(ROOT / "scripts" / "recommend.py")
    runs = [fresh_python(script, str(out), "--user", user, "--k", "5", *flag)
            for flag in ((), ("--index",))]  # fmt: skip
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr
    items = [[line.split()[1] for line in r.stdout.splitlines()[1:]] for r in runs]
    assert len(items[0]) == 5 and items[0] == items[1]
