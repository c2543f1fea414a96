"""Export of a trained run: complete, verified in a fresh process, and faithful to the run's metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from recsys.errors import ExportError
from recsys.metrics.ranking import RankingAccumulator
from recsys.models.components.mf import MatrixFactorization
from recsys.run_dir import RunDir
from recsys.serving import loader
from recsys.serving.exporter import export_from_config, export_run
from recsys.train import train
from tests.conftest import ROOT, compose_config, require_data
from tests.serving_support import (
    FeatureTowers,
    export_config,
    exported,
    fresh_python,
    trained_run,
)

ARTIFACTS = ("retriever", "user_encoder", "item_encoder")


@pytest.fixture(scope="module")
def mf_run(tmp_path_factory):
    return trained_run(tmp_path_factory.getbasetemp() / "shared", "mf")


@pytest.fixture(scope="module")
def mf_export(mf_run):
    out = mf_run / "export"
    if not (out / "manifest.json").is_file():
        exported(mf_run, out, "format=both")
    return out


def test_export_holds_verified_artifacts_and_manifest(mf_run, mf_export):
    manifest = loader.verify_all(mf_export)  # every file matches its sha256
    on_disk = {p.relative_to(mf_export).as_posix() for p in mf_export.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(manifest["files"])
    for name in ARTIFACTS:
        entry = manifest["artifacts"][name]
        assert entry["files"] == {
            "torchscript": f"{name}.pt",
            "pt2": f"{name}.pt2",
            "onnx": f"{name}.onnx",  # conf/export.yaml: onnx: true
        }
        for fmt in ("torchscript", "pt2", "onnx"):
            check = entry["verification"][fmt]
            assert check["passed"] and check["max_abs_diff"] <= 1e-5, (name, fmt, check)
            assert check["process"]["recsys_importable"] is False
            assert check["rows"] > 1
    assert manifest["artifacts"]["retriever"]["verification"]["pt2"]["ids_identical"] is True
    assert "propensity" not in manifest["artifacts"]  # MF has no propensity head
    sig = manifest["artifacts"]["retriever"]["signature"]["torchscript"]
    assert [i["name"] for i in sig["inputs"]] == ["user_idx", "k"]
    assert [(o["name"], o["dtype"]) for o in sig["outputs"]] == [
        ("scores", "float32"),
        ("item_idx", "int64"),
    ]
    assert manifest["model"]["name"] == "mf" and manifest["model"]["config"]["dim"] == 64
    assert manifest["run"]["metrics"] == json.loads((mf_run / "metrics.json").read_text())
    assert manifest["environment"]["torch"] == torch.__version__
    for name in ("users", "items"):
        shipped = (mf_export / manifest["vocab"][name]).read_text()
        assert shipped == (mf_run / "vocab" / f"{name}.txt").read_text()


@pytest.mark.parametrize("fmt", ["torchscript", "pt2"])
def test_exported_retriever_reproduces_the_run_test_metrics(mf_run, mf_export, fmt):
    """Ranking the test users with the loaded artifact gives the NDCG that training reported."""
    run = RunDir(mf_run)
    retriever = loader.load_artifact(mf_export, "retriever", fmt)
    acc = RankingAccumulator([10, 20], len(run.vocabulary("items")))
    k = 20 if fmt == "torchscript" else torch.tensor(20)
    with torch.no_grad():
        for batch in run.load_data().ranking_batches("test"):
            _, top = retriever(batch["users"], k)
            targets = (batch["target_rows"], batch["target_items"])
            acc.update(batch["users"], top, targets, batch["num_targets"])
    got = acc.compute()
    for key in ("ndcg@10", "recall@20", "coverage@10"):
        assert got[key] == pytest.approx(run.metrics()[f"test/{key}"], abs=1e-6), key


@pytest.mark.slow
def test_export_then_recommend_from_the_command_line(mf_run, tmp_path):
    out = tmp_path / "export"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "scripts" / "export.py"), f"run_dir={mf_run}"]
    proc = subprocess.run([*cmd, f"out_dir={out}"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "retriever.pt: parity passed in a fresh process" in proc.stdout
    pinned = proc.stdout.split("manifest sha256: ")[1].split()[0]

    users = (out / "vocab" / "users.txt").read_text().splitlines()
    items = (out / "vocab" / "items.txt").read_text().splitlines()
    script = str(ROOT / "scripts" / "recommend.py")
    rec = fresh_python(script, str(out), "--user", users[7], "--manifest-sha256", pinned)
    assert rec.returncode == 0, rec.stderr
    printed = [line.split()[1] for line in rec.stdout.splitlines()[1:]]
    _, top = loader.load_artifact(out, "retriever")(torch.tensor([7]), 10)
    assert printed == [items[i] for i in top[0].tolist()]

    unknown = fresh_python(script, str(out), "--user", "no-such-user", "--k", "5")
    assert unknown.returncode == 0, unknown.stderr
    assert "'no-such-user' is not in this export's vocabulary" in unknown.stdout
    popular = (out / "vocab" / "popular_items.txt").read_text().splitlines()[:5]
    assert [line.split()[1] for line in unknown.stdout.splitlines()[1:]] == popular


def test_ckpt_path_alone_finds_its_run(mf_run, tmp_path):
    last = mf_run / "checkpoints" / "last.ckpt"
    out, manifest = export_from_config(export_config(f"ckpt_path={last}", f"out_dir={tmp_path}/e"))
    assert manifest["run"]["checkpoint"] == str(last)
    assert manifest["artifacts"]["retriever"]["verification"]["torchscript"]["passed"]


def _save_as_if_on_gpu(state: dict, path, monkeypatch) -> None:
    """torch.save with every storage tagged cuda:0, as a checkpoint written on a GPU would be."""
    registry = list(torch.serialization._package_registry)
    tag = (0, lambda storage: "cuda:0", lambda storage, location: None)
    monkeypatch.setattr(torch.serialization, "_package_registry", [tag, *registry])
    torch.save(state, path)
    monkeypatch.setattr(torch.serialization, "_package_registry", registry)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading GPU tensors without CUDA")
def test_gpu_trained_bf16_checkpoint_exports_on_cpu(mf_run, tmp_path, monkeypatch):
    ckpt = torch.load(mf_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["state_dict"] = {
        k: v.bfloat16() if v.is_floating_point() else v for k, v in ckpt["state_dict"].items()
    }
    gpu_ckpt = tmp_path / "gpu.ckpt"
    _save_as_if_on_gpu(ckpt, gpu_ckpt, monkeypatch)
    with pytest.raises(RuntimeError, match="CUDA"):  # the file really holds GPU tensors
        torch.load(gpu_ckpt, weights_only=True)

    cfg = export_config(f"run_dir={mf_run}", f"ckpt_path={gpu_ckpt}", f"out_dir={tmp_path}/e")
    out, manifest = export_from_config(cfg)
    assert manifest["artifacts"]["retriever"]["verification"]["torchscript"]["passed"]
    scores, _ = loader.load_artifact(out, "retriever")(torch.tensor([0, 1]), 10)
    assert scores.dtype == torch.float32 and scores.device.type == "cpu"


class _Disagreeing(MatrixFactorization):
    """Ranks with a per-item shift its embeddings do not have: the exported retriever cannot match."""

    def score_all_items(self, users: torch.Tensor) -> torch.Tensor:
        shift = torch.arange(self.num_items, dtype=torch.float32) * 1e-2
        return super().score_all_items(users) + shift


def test_failed_parity_fails_loudly_and_publishes_nothing(mf_run, tmp_path):
    run = RunDir(mf_run).load()
    broken = _Disagreeing(run.scorer.num_users, run.scorer.num_items, dim=64)
    broken.load_state_dict(run.scorer.state_dict())
    run.scorer = broken.eval()
    out = tmp_path / "export"
    pattern = r"parity check failed for \['retriever:onnx', 'retriever:torchscript'\]"
    with pytest.raises(ExportError, match=pattern):
        export_run(run, out)
    assert not out.exists()
    failed = tmp_path / "export.failed"
    with pytest.raises(loader.IntegrityError, match="did not pass its parity check"):
        loader.load_artifact(failed, "retriever")
    assert loader.load_artifact(failed, "user_encoder") is not None  # those did pass


def test_feature_tower_scorer_exports_through_the_contract_alone(mf_run, tmp_path):
    """Any scorer on the contract exports: here towers over side features held in buffers."""
    run = RunDir(mf_run).load()
    run.scorer = FeatureTowers(run.scorer.num_users, run.scorer.num_items).eval()
    manifest = export_run(run, tmp_path / "export", formats=("torchscript", "pt2"))
    for name in ARTIFACTS:
        for fmt in ("torchscript", "pt2"):
            assert manifest["artifacts"][name]["verification"][fmt]["passed"], (name, fmt)
    assert manifest["model"]["scorer_class"].endswith("FeatureTowers")
    encoder = loader.load_artifact(tmp_path / "export", "user_encoder")
    assert encoder(torch.tensor([0, 5])).shape == (2, 16)


def test_diverged_model_is_refused_before_anything_is_written(mf_run, tmp_path):
    run = RunDir(mf_run).load()
    with torch.no_grad():
        run.scorer.item_table.weight[3, 0] = float("nan")
    with pytest.raises(ExportError, match="1 item embeddings hold NaN or inf"):
        export_run(run, tmp_path / "export")
    assert list(tmp_path.iterdir()) == []


def test_vocabulary_of_another_size_than_the_model_is_refused(mf_run, tmp_path):
    copy = RunDir(tmp_path / "run")
    shutil.copytree(mf_run, copy.root, ignore=shutil.ignore_patterns("export*"))
    users = copy.vocabulary("users")
    copy.write_vocabularies(users[:-1], copy.vocabulary("items"))
    with pytest.raises(ExportError, match=f"users.txt: {len(users) - 1} lines for the model's"):
        export_run(copy.load(), tmp_path / "export")
    assert not (tmp_path / "export").exists()


def test_export_without_a_run_says_what_to_pass():
    with pytest.raises(ExportError, match="run_dir=<run directory> or ckpt_path="):
        export_from_config(export_config())


@pytest.mark.slow
def test_ml100k_export_recommends_titles_and_popular_fallback(tmp_path):
    root = require_data("ml-100k", "u.user", "u.item", "u1.base", "u1.test")
    overrides = ["experiment=ml100k_mf", f"data.root={root}", "trainer.max_epochs=2"]
    train(compose_config([*overrides, "callbacks.progress_bar=null"], tmp_path / "run"))
    out, manifest = exported(tmp_path / "run", tmp_path / "export")
    assert manifest["vocab"]["item_titles"] == "vocab/item_titles.txt"
    script = str(ROOT / "scripts" / "recommend.py")
    proc = fresh_python(script, str(out), "--user", "196", "--k", "3")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("top 3 for user 196 (model mf, ml-100k):")
    assert all("(19" in line for line in proc.stdout.splitlines()[1:])  # titles carry a year
    proc = fresh_python(script, str(out), "--user", "not-a-user", "--k", "1")
    assert "1. 50  Star Wars (1977)" in proc.stdout  # the most rated film of u1.base


def test_every_torch_load_in_recsys_is_weights_only():
    """Checkpoints and case files may come from elsewhere: no pickle code runs when recsys reads them."""
    import ast

    calls = []
    for path in [*(ROOT / "recsys").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            func = getattr(node, "func", None)
            if isinstance(node, ast.Call) and ast.unparse(func) == "torch.load":
                flags = {k.arg: ast.unparse(k.value) for k in node.keywords}
                calls.append((path.name, node.lineno, flags.get("weights_only")))
    assert calls and all(flag == "True" for *_, flag in calls), calls
