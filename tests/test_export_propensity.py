"""propensity.pt: exported from any scorer that offers the `propensity_module()` hook (here a fake
head with calibration and down-sampling correction), checked like the other artifacts."""

from __future__ import annotations

import pytest
import torch

from recsys.run_dir import RunDir
from recsys.serving import loader
from tests.conftest import ROOT
from tests.serving_support import exported, fresh_python, trained_run

HOOKED = "model.scorer._target_=tests.serving_support.MFWithPropensity"


@pytest.fixture(scope="module", autouse=True)
def trust_the_hooked_scorer():
    """The run names a class of the tests, which its reader vouches for (recsys.config.trusted)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RECSYS_TRUSTED_TARGETS", HOOKED.split("=")[1])
        yield


@pytest.fixture(scope="module")
def propensity_export(tmp_path_factory, trust_the_hooked_scorer):
    run_dir = trained_run(tmp_path_factory.getbasetemp() / "shared", "mf_propensity", HOOKED)
    out = run_dir / "export"
    if not (out / "manifest.json").is_file():
        exported(run_dir, out, "format=both")
    return run_dir, out


def test_propensity_artifact_matches_the_hooked_head(propensity_export):
    run_dir, out = propensity_export
    manifest = loader.verify_all(out)
    entry = manifest["artifacts"]["propensity"]
    assert entry["files"] == {
        "torchscript": "propensity.pt",
        "pt2": "propensity.pt2",
        "onnx": "propensity.onnx",  # conf/export.yaml: onnx: true
    }
    for fmt in ("torchscript", "pt2", "onnx"):
        assert entry["verification"][fmt]["passed"], entry["verification"][fmt]
        assert entry["verification"][fmt]["process"]["recsys_importable"] is False
    assert entry["signature"]["torchscript"]["outputs"][0]["name"] == "probability"

    run = RunDir(run_dir)
    scorer, _ = run.load_scorer()
    users, items = (pairs[:50] for pairs in run.seen_pairs("test"))
    with torch.no_grad():
        want = scorer.propensity_module()(users, items)
        for fmt in ("torchscript", "pt2"):
            got = loader.load_artifact(out, "propensity", fmt)(users, items)
            assert got.dtype == torch.float32 and got.shape == (50,)
            assert torch.allclose(got, want, atol=1e-6, rtol=0)
            assert bool(((got > 0) & (got < 1)).all())


@pytest.mark.parametrize(
    ("users", "items", "message"),
    [
        ([0, 1], [0], "same shape"),
        ([0], [10_000], "item_idx holds index 10000, out of range"),
        ([-3], [0], "user_idx holds a negative index"),
    ],
    ids=["mismatched-pairs", "item-out-of-range", "negative-user"],
)
def test_propensity_validates_its_inputs(propensity_export, users, items, message):
    _, out = propensity_export
    head = loader.load_artifact(out, "propensity")
    with pytest.raises(torch.jit.Error, match=message):
        head(torch.tensor(users), torch.tensor(items))


def test_pt2_propensity_rejects_out_of_range_items(propensity_export):
    _, out = propensity_export
    head = loader.load_artifact(out, "propensity", "pt2")
    with pytest.raises(RuntimeError, match="item_idx holds an index >= 200"):
        head(torch.tensor([0]), torch.tensor([200]))


def test_recommend_shows_conversion_probabilities(propensity_export):
    _, out = propensity_export
    user = (out / "vocab" / "users.txt").read_text().splitlines()[3]
    proc = fresh_python(
        str(ROOT / "scripts" / "recommend.py"), str(out), "--user", user, "--k", "3"
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()[1:]
    assert len(lines) == 3 and all("P(convert) 0." in line for line in lines)
