"""Freed host memory stays mapped between training steps (recsys/perf/allocator.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# MF training steps at batch 8192 in a fresh interpreter: page faults per step, with or without
# retain_freed_memory() (a process-wide setting, hence the subprocess).
STEPS = """
import json, resource, sys, torch
from recsys.perf.allocator import retain_freed_memory
from recsys.models.components.mf import MatrixFactorization
from recsys.optim.sparse_adam import parameter_groups, sparse_dense_adam
from recsys.models.retrieval import squared_norm
retained = retain_freed_memory() if sys.argv[1] == "retain" else None
torch.manual_seed(0)
torch.set_num_threads(1)  # one allocating thread: the main arena only
mf = MatrixFactorization(20_000, 2_000, 64, sparse=True)
opt = sparse_dense_adam(parameter_groups(mf), lr=0.005)
faults = []
for step in range(80):
    users, items = torch.randint(20_000, (8192,)), torch.randint(2_000, (5 * 8192,))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    user, both = mf.user_embedding(users), mf.item_embedding(items)
    scores = (user.repeat(5, 1) * both).sum(-1)
    loss = torch.nn.functional.softplus(scores).mean() + 1e-4 * squared_norm(both)
    opt.zero_grad()
    loss.backward()
    opt.step()
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"retained": retained, "faults_per_step": sum(faults[20:]) / 60}))
"""


def faults_per_step(mode: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", STEPS, mode], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a glibc (Linux) setting")
@pytest.mark.slow
def test_training_steps_stop_page_faulting_their_temporaries():
    default, retained = faults_per_step("default"), faults_per_step("retain")
    assert retained["retained"] is True
    # glibc's defaults hand the steps' multi-MB gradients back to the OS and fault them in again.
    assert default["faults_per_step"] > 500, default
    assert retained["faults_per_step"] < default["faults_per_step"] / 4, (default, retained)
