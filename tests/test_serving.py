"""Serving side: tie order, input validation on loaded artifacts, tamper detection, the C++ example,
and the latency benchmark's smoke run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from recsys.metrics.ranking import topk_items
from recsys.serving import loader
from recsys.serving.topk import tie_rank_buffer, topk_lowest_index_ties
from tests.conftest import ROOT
from tests.serving_support import exported, flip_one_byte, fresh_python, trained_run

NUM_ITEMS = 200  # tiny synthetic catalogue of tests/conftest.py TINY


@pytest.fixture(scope="module")
def mf_export(tmp_path_factory):
    run_dir = trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")
    out = run_dir / "export"
    if not (out / "manifest.json").is_file():
        exported(run_dir, out, "format=both")
    return out


def _tricky_scores() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    s = torch.randint(0, 4, (8, 60), generator=g).float()  # many ties
    s[0, 5], s[0, 9] = float("inf"), float("inf")
    s[1] = -0.0
    s[1, ::3] = 0.0  # -0.0 and +0.0 must tie
    s[2, :40] = float("-inf")  # mostly masked row: -inf fills the tail, lowest index first
    s[3] = torch.randn(60, generator=g)  # no ties at all: the fast path
    return s


@pytest.mark.parametrize("k", [1, 7, 30, 60])
@pytest.mark.parametrize("branch", [True, False], ids=["fast-path", "export-path"])
def test_serving_topk_follows_the_evaluation_tie_rule(k, branch):
    scores = _tricky_scores()
    want = topk_items(scores, k)
    scripted = torch.jit.script(topk_lowest_index_ties)
    for fn in (topk_lowest_index_ties, scripted):
        values, idx = fn(scores.clone(), k, tie_rank_buffer(60), branch)
        assert torch.equal(idx, want)
        assert torch.equal(values, scores.gather(1, want))


BAD_INPUTS = [
    ("out-of-range user", [300], 5, r"user_idx holds index 300, out of range \[0, 300\)"),
    ("negative user", [3, -1], 5, r"user_idx holds a negative index \(-1\)"),
    ("k above catalogue", [3], NUM_ITEMS + 1, r"k must be in \[1, 200\].*got 201"),
    ("k zero", [3], 0, r"k must be in \[1, 200\]"),
]


@pytest.mark.parametrize(
    ("case", "users", "k", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_loaded_torchscript_retriever_rejects_bad_input(mf_export, case, users, k, message):
    retriever = loader.load_artifact(mf_export, "retriever", "torchscript")
    with pytest.raises(torch.jit.Error, match=message):
        retriever(torch.tensor(users), k)


@pytest.mark.parametrize(
    ("case", "users", "k", "message"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_loaded_pt2_retriever_rejects_bad_input(mf_export, case, users, k, message):
    retriever = loader.load_artifact(mf_export, "retriever", "pt2")
    pt2_message = {
        "out-of-range user": "user_idx holds an index >= 300",
        "negative user": "user_idx holds a negative index",
    }.get(case, r"k must be in \[1, 200\]")
    with pytest.raises(RuntimeError, match=pt2_message):
        retriever(torch.tensor(users), torch.tensor(k))


def test_torchscript_artifacts_reject_wrong_dtype_and_rank(mf_export):
    retriever = loader.load_artifact(mf_export, "retriever")
    with pytest.raises(torch.jit.Error, match="must be an int64"):
        retriever(torch.tensor([1], dtype=torch.int32), 5)
    with pytest.raises(torch.jit.Error, match="must be 1-D"):
        retriever(torch.tensor([[1]]), 5)
    items = loader.load_artifact(mf_export, "item_encoder")
    with pytest.raises(torch.jit.Error, match="item_idx holds index 200"):
        items(torch.tensor([200]))
    scores, idx = retriever(torch.zeros(0, dtype=torch.long), 5)  # an empty batch is fine
    assert scores.shape == idx.shape == (0, 5)


def test_whole_catalogue_puts_seen_items_last(mf_export):
    retriever = loader.load_artifact(mf_export, "retriever")
    scores, idx = retriever(torch.tensor([0]), NUM_ITEMS)
    assert sorted(idx[0].tolist()) == list(range(NUM_ITEMS))
    seen = torch.isinf(scores[0])
    assert seen.any() and not seen[: int((~seen).sum())].any()  # -inf only at the end


@pytest.mark.parametrize("target", ["retriever.pt", "retriever.pt2", "vocab/items.txt"])
def test_one_changed_byte_is_detected_before_loading(mf_export, tmp_path, target):
    copy = tmp_path / "export"
    shutil.copytree(mf_export, copy)
    flip_one_byte(copy / target)
    with pytest.raises(loader.IntegrityError, match="does not match the manifest"):
        loader.verify_all(copy)
    if target.startswith("retriever"):
        fmt = "pt2" if target.endswith("pt2") else "torchscript"
        with pytest.raises(loader.IntegrityError, match=f"{target}: sha256"):
            loader.load_artifact(copy, "retriever", fmt)
    users = (copy / "vocab" / "users.txt").read_text().splitlines()
    fmt = ["--format", "pt2"] if target.endswith(".pt2") else []
    proc = fresh_python(str(ROOT / "scripts" / "recommend.py"), str(copy), "--user", users[0], *fmt)
    assert proc.returncode == 2
    assert "altered or corrupted" in proc.stderr


def test_pinned_manifest_hash_catches_a_rewritten_manifest(mf_export, tmp_path):
    pinned = hashlib.sha256((mf_export / "manifest.json").read_bytes()).hexdigest()
    assert loader.load_artifact(mf_export, expected_manifest_sha256=pinned) is not None
    copy = tmp_path / "export"
    shutil.copytree(mf_export, copy)
    manifest = copy / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"name": "mf"', '"name": "xx"'))
    with pytest.raises(loader.IntegrityError, match="differs from the pinned value"):
        loader.load_artifact(copy, expected_manifest_sha256=pinned)


def _cpp_build_dir() -> Path:
    """A build folder under the temp dir, keyed by the sources and torch version (reused)."""
    digest = hashlib.sha256(torch.__version__.encode())
    for name in ("CMakeLists.txt", "main.cpp", "sha256.h"):
        digest.update((ROOT / "examples" / "cpp_serving" / name).read_bytes())
    return Path(tempfile.gettempdir()) / f"recsys_cpp_{digest.hexdigest()[:16]}"


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("c++") is None,
    reason="the C++ example needs cmake and a C++ compiler on PATH",
)
def test_cpp_example_prints_the_same_top10_as_python(mf_export):
    build = _cpp_build_dir()
    binary = build / "recommend"
    if not binary.is_file():
        prefix = torch.utils.cmake_prefix_path
        cmd = ["cmake", "-S", str(ROOT / "examples" / "cpp_serving"), "-B", str(build)]
        configure = [*cmd, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={prefix}"]
        for step in (configure, ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)]):
            proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    users = (mf_export / "vocab" / "users.txt").read_text().splitlines()
    items = (mf_export / "vocab" / "items.txt").read_text().splitlines()
    retriever = loader.load_artifact(mf_export, "retriever")
    for index in (0, 17, len(users) - 1):
        proc = subprocess.run(
            [str(binary), str(mf_export), users[index], "10"], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr
        rows = [line.split("\t") for line in proc.stdout.splitlines()]
        scores, top = retriever(torch.tensor([index]), 10)
        assert [r[1] for r in rows] == [items[i] for i in top[0].tolist()]
        assert [float(r[2]) for r in rows] == pytest.approx(scores[0].tolist(), abs=1e-4)
    for k, message in (("201", "k must be in [1, 200]"), ("abc", "k must be a whole number"),
                       ("9" * 30, "k must be in [1, 200]")):  # fmt: skip
        proc = subprocess.run(
            [str(binary), str(mf_export), users[0], k], capture_output=True, text=True
        )
        assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    hashes = json.loads((mf_export / "manifest.json").read_text())["files"]
    pinned = [arg for name, digest in hashes.items() for arg in ("--sha256", f"{name}={digest}")]
    proc = subprocess.run(
        [str(binary), str(mf_export), users[0], "3", *pinned], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    pinned[pinned.index(f"vocab/items.txt={hashes['vocab/items.txt']}")] = (
        "vocab/items.txt=" + "0" * 64
    )
    proc = subprocess.run(
        [str(binary), str(mf_export), users[0], "3", *pinned], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "items.txt: sha256" in proc.stderr, proc.stderr


def test_serving_benchmark_smoke_run(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "benchmarks.serving", "--smoke", "--pt2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    methods = {r["method"] for r in rows}
    assert methods == {"eager model", "eager module", "torchscript", "pt2"}
    assert {r["batch"] for r in rows} == {1, 64}
    assert all(0 < r["p50_ms"] <= r["p99_ms"] for r in rows)
