"""The CUDA path on a real device: the default run trained in bf16 mixed precision, its export
checked and its retriever run on the GPU, and the sparse-table optimizers' updates on CUDA against
CPU. Marked `gpu`: skipped, saying why, where torch.cuda.is_available() is False (tests/conftest.py).
On a GPU box: `python -m pytest -q -m gpu`."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pytest
import torch

from recsys.optim.rowwise_adagrad import RowWiseAdagrad
from recsys.optim.sparse_adam import RowSparseAdam
from recsys.serving import loader
from recsys.train import resolve_precision, train
from tests.conftest import compose_config
from tests.serving_support import exported


@pytest.fixture(scope="module")
def gpu_run(tmp_path_factory):
    """The no-argument run (default synthetic data, MF) on one GPU, shortened to 5 epochs:
    (config, metrics, objects, run directory)."""
    run_dir = tmp_path_factory.mktemp("gpu") / "run"
    overrides = ["trainer.accelerator=gpu", "trainer.devices=1", "trainer.max_epochs=5",
                 "callbacks.progress_bar=null", "trainer.enable_progress_bar=false"]  # fmt: skip
    cfg = compose_config(overrides, run_dir)
    metrics, objects = train(cfg)
    return cfg, metrics, objects, run_dir


@pytest.mark.gpu
def test_default_run_trains_in_bf16_on_cuda_and_beats_popularity(gpu_run):
    cfg, metrics, objects, run_dir = gpu_run
    assert resolve_precision(cfg.trainer) == "bf16-mixed"  # precision: auto on a CUDA device
    trainer = objects["trainer"]
    assert trainer.precision == "bf16-mixed"
    assert trainer.strategy.root_device.type == "cuda"
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved == pytest.approx(metrics)
    tested = {k: v for k, v in saved.items() if k.startswith("test/")}
    assert "test/ndcg@10" in tested
    assert all(math.isfinite(v) for v in tested.values()), tested
    assert saved["test/ndcg@10"] > saved["popularity/test/ndcg@10"]


def ranked_alike(
    want: tuple[torch.Tensor, torch.Tensor], got: tuple[torch.Tensor, torch.Tensor], k: int
) -> torch.Tensor:
    """Per row of two top-(k + 1) results (scores, ids): whether the first k ids agree, and whether
    the row has scores within float rounding of each other, whose order the devices' rounding may
    swap (such rows count as agreeing). The scores themselves must match to 1e-5."""
    (want_scores, want_ids), (got_scores, got_ids) = want, got
    torch.testing.assert_close(got_scores, want_scores, rtol=1e-5, atol=1e-5)
    gaps = want_scores[:, :-1] - want_scores[:, 1:]  # (B, k): descending, so >= 0
    close = (gaps <= 1e-5 * (1 + want_scores[:, 1:].abs())).any(1)
    same = (got_ids[:, :k] == want_ids[:, :k]).all(1)
    return same | close, close


@pytest.mark.gpu
def test_export_of_the_cuda_run_passes_parity_and_ranks_alike_on_cuda(gpu_run, tmp_path):
    _, _, objects, run_dir = gpu_run
    out, manifest = exported(run_dir, tmp_path / "export")  # checkpoint read with map_location=cpu
    for name, artifact in manifest["artifacts"].items():
        for fmt, check in artifact["verification"].items():
            assert check["passed"], (name, fmt, check)
    on_cpu = loader.load_artifact(out, "retriever")  # checks its sha256 and parity record
    path = out / manifest["artifacts"]["retriever"]["files"]["torchscript"]
    on_cuda = torch.jit.load(str(path), map_location="cuda")
    users, k = torch.arange(objects["data"].num_users), 20
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")  # train() set "high": TF32 matmuls on CUDA
    try:
        with torch.no_grad():
            want = on_cpu(users, k + 1)
            got = on_cuda(users.cuda(), k + 1)
    finally:
        torch.set_float32_matmul_precision(previous)
    assert all(t.device.type == "cuda" for t in got)
    alike, close = ranked_alike(want, tuple(t.cpu() for t in got), k)
    assert alike.all(), f"{int((~alike).sum())} of {len(users)} users ranked differently"
    assert float(close.float().mean()) < 0.1  # the comparison is not vacuous


def sparse_steps(make: Callable[[list], torch.optim.Optimizer], device: str) -> tuple:
    """Five steps of an optimizer on a (50, 8) table from fixed row-sparse gradients (uncoalesced,
    duplicate rows included; rows 40-49 never touched): (table, its optimizer state) on the CPU."""
    g = torch.Generator().manual_seed(0)
    table = torch.nn.Parameter(torch.randn(50, 8, generator=g).to(device))
    opt = make([table])
    for t in range(5):
        rows = torch.randint(40, (32,), generator=g)
        rows[:4] = t  # duplicates: coalescing sums them before the update
        values = torch.randn(32, 8, generator=g)
        grad = torch.sparse_coo_tensor(rows.unsqueeze(0), values, (50, 8), check_invariants=True)
        table.grad = grad.to(device)
        opt.step()
    state = {k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in opt.state[table].items()}
    return table.detach().cpu(), state


@pytest.mark.gpu
@pytest.mark.parametrize(
    "make",
    [
        lambda params: RowSparseAdam(params, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1),
        lambda params: RowWiseAdagrad(params, lr=0.1),
    ],
    ids=["row_sparse_adam", "rowwise_adagrad"],
)
def test_sparse_table_optimizers_update_alike_on_cuda_and_cpu(make):
    """Same gradients, same update: weights and state (moments or row accumulators, step)."""
    cpu_table, cpu_state = sparse_steps(make, "cpu")
    cuda_table, cuda_state = sparse_steps(make, "cuda")
    torch.testing.assert_close(cuda_table, cpu_table, rtol=1e-5, atol=1e-5)
    assert cuda_state.keys() == cpu_state.keys()
    for key, value in cpu_state.items():
        if isinstance(value, torch.Tensor):
            torch.testing.assert_close(cuda_state[key], value, rtol=1e-5, atol=1e-5, msg=key)
        else:
            assert cuda_state[key] == value, key
    initial = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(cuda_table[40:], initial[40:])  # untouched rows keep their values
