"""ONNX artifacts: written beside TorchScript, hashed in the manifest, verified with onnxruntime in
a fresh process, opened by the standalone loader only after their sha256 check."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch

from recsys.errors import ExportError
from recsys.serving import loader
from recsys.serving.manifest import sha256_file
from tests.onnx_support import (
    eager,
    max_abs_diff,
    needs_onnx,
    onnx_triton_export,
    run_fresh,
    two_tower_export,
)
from tests.serving_support import export_config, exported, flip_one_byte, fresh_python

pytestmark = needs_onnx
ARTIFACTS = ("retriever", "user_encoder", "item_encoder")


@pytest.fixture(scope="module")
def onnx_export(tmp_path_factory):
    return onnx_triton_export(tmp_path_factory)


def test_every_onnx_file_is_listed_hashed_and_passed_parity(onnx_export):
    _, out, manifest = onnx_export
    loader.verify_all(out)  # every listed file matches its sha256
    for name in ARTIFACTS:
        entry = manifest["artifacts"][name]
        assert entry["files"]["onnx"] == f"{name}.onnx"
        assert manifest["files"][f"{name}.onnx"] == sha256_file(out / f"{name}.onnx")
        check = entry["verification"]["onnx"]
        assert check["passed"] and check["max_abs_diff"] <= 1e-5, (name, check)
        assert check["process"]["recsys_importable"] is False and check["rows"] > 1
    assert manifest["artifacts"]["retriever"]["verification"]["onnx"]["ids_identical"] is True
    inputs = manifest["artifacts"]["retriever"]["signature"]["onnx"]["inputs"]
    assert [(i["name"], i["dtype"], i["shape"]) for i in inputs] == [
        ("user_idx", "int64", ["B"]),
        ("k", "int64", []),
    ]


def test_onnx_answers_like_the_eager_model_in_a_process_without_recsys(onnx_export, tmp_path):
    run_dir, out, _ = onnx_export
    users, items = torch.tensor([0, 3, 7, 11, 299]), torch.tensor([1, 2, 199])
    jobs = {
        "retriever": (
            "onnx",
            str(out / "retriever.onnx"),
            [("user_idx", users), ("k", torch.tensor(20))],
        ),
        "user_encoder": ("onnx", str(out / "user_encoder.onnx"), [("user_idx", users)]),
        "item_encoder": ("onnx", str(out / "item_encoder.onnx"), [("item_idx", items)]),
    }
    got = run_fresh(jobs, tmp_path)
    scores, ids = eager(run_dir, "retriever", users, k=20)
    assert torch.equal(got["retriever"][1], ids)
    assert max_abs_diff(got["retriever"][0], scores) <= 1e-5
    assert max_abs_diff(got["user_encoder"][0], eager(run_dir, "user_encoder", users)[0]) <= 1e-5
    want = eager(run_dir, "item_encoder", None, items)[0]
    assert max_abs_diff(got["item_encoder"][0], want) <= 1e-5


def test_loader_opens_onnx_in_a_fresh_process_and_flags_bad_indices(onnx_export, tmp_path):
    """Through the loader copy the export ships; ONNX has no assert, so an out-of-range index
    must come back as NaN / id -1, never as another user's answer (Gather wraps -1 around)."""
    _, out, _ = onnx_export
    script = tmp_path / "serve.py"
    script.write_text(
        "import runpy, sys, numpy as np\n"
        "loader = runpy.run_path(sys.argv[1] + '/loader.py')\n"
        "enc = loader['load_onnx'](sys.argv[1], 'user_encoder', sys.argv[2])\n"
        "emb = enc.run(None, {'user_idx': np.array([-1, 5, 10**6])})[0]\n"
        "ret = loader['load_onnx'](sys.argv[1], 'retriever')\n"
        "ids = ret.run(None, {'user_idx': np.array([-1, 5]), 'k': np.array(3)})[1]\n"
        "print(np.isnan(emb).all(1).tolist(), ids[0].tolist(), int((ids[1] >= 0).sum()))\n"
    )
    proc = fresh_python(str(script), str(out), sha256_file(out / "manifest.json"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split("\n")[0] == "[True, False, True] [-1, -1, -1] 3"


def test_tampered_onnx_file_is_refused_by_the_loader(onnx_export, tmp_path):
    _, out, _ = onnx_export
    copy = tmp_path / "export"
    shutil.copytree(out, copy)
    flip_one_byte(copy / "user_encoder.onnx")
    with pytest.raises(
        loader.IntegrityError, match=r"user_encoder\.onnx: sha256 .* does not match"
    ):
        loader.load_onnx(copy, "user_encoder")
    assert loader.load_onnx(copy, "item_encoder") is not None  # the untouched file still opens


@pytest.mark.slow
def test_two_tower_with_side_features_and_propensity_exports_to_onnx(tmp_path_factory):
    _, _, manifest = two_tower_export(tmp_path_factory)
    for name in (*ARTIFACTS, "propensity"):
        entry = manifest["artifacts"][name]
        assert entry["skipped"] == {}, entry["skipped"]
        check = entry["verification"]["onnx"]
        assert check["passed"] and check["max_abs_diff"] <= 1e-5, (name, check)


def test_missing_onnx_package_is_one_line_naming_the_extra_and_the_opt_out(
    onnx_export, tmp_path, monkeypatch
):
    run_dir, _, _ = onnx_export
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # import onnxscript -> ImportError
    cfg = export_config(f"run_dir={run_dir}", f"out_dir={tmp_path}/e")
    from recsys.serving.exporter import export_from_config

    with pytest.raises(ExportError) as err:
        export_from_config(cfg)
    message = str(err.value)
    assert "\n" not in message and "onnxscript" in message
    assert 'pip install -e ".[serving]"' in message and "onnx=false" in message
    assert not (tmp_path / "e").exists()
    # TorchScript alone needs none of the ONNX packages.
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    _, manifest = exported(run_dir, tmp_path / "e", "onnx=false")
    assert all("onnx" not in e["files"] for e in manifest["artifacts"].values())


def test_loader_without_a_format_still_gives_a_torch_module_when_onnx_sorts_first(tmp_path):
    """A pt2-only export now also holds `onnx`, which sorts first: the default stays pt2."""
    for name in ("retriever.onnx", "retriever.pt2"):
        (tmp_path / name).write_bytes(name.encode())
    files = {n: sha256_file(tmp_path / n) for n in ("retriever.onnx", "retriever.pt2")}
    entry = {
        "files": {"onnx": "retriever.onnx", "pt2": "retriever.pt2"},
        "verification": {"onnx": {"passed": True}, "pt2": {"passed": True}},
    }
    manifest = {"files": files, "artifacts": {"retriever": entry}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    fmt, path = loader.artifact_path(tmp_path, "retriever")
    assert (fmt, path.name) == ("pt2", "retriever.pt2")
