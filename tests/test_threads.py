"""`threads:` picks the intra-op thread count deliberately: the auto rule, its inputs (cores this
process may use, processes sharing them), explicit settings, and the entry script logging it."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from recsys.errors import ConfigError
from recsys.perf import threads
from recsys.perf.threads import (
    apply_threads,
    auto_threads,
    available_cores,
    processes_per_machine,
    resolve_threads,
)
from tests.conftest import ROOT, compose_config


@pytest.fixture(autouse=True)
def keep_torch_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    ("cores", "processes", "expected"),
    [(1, 1, 1), (2, 1, 1), (4, 1, 3), (4, 2, 1), (8, 2, 3), (16, 1, 8), (64, 1, 8), (16, 2, 7)],
)
def test_auto_leaves_a_core_free_shares_cores_between_processes_and_is_capped(
    cores, processes, expected
):
    """A busy 2-core box gets 1 thread (2 made training 10x slower than 1 there)."""
    assert auto_threads(cores, processes) == expected


def test_available_cores_follow_affinity_and_the_container_quota(monkeypatch):
    monkeypatch.setattr(threads, "_affinity", lambda: {0, 1, 2, 3})
    monkeypatch.setattr(threads, "_physical_cores", lambda cpus: len(cpus))
    monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: None)
    assert available_cores() == 4
    monkeypatch.setattr(threads, "_cgroup_cpu_limit", lambda: 2.5)  # cpu.max "250000 100000"
    assert available_cores() == 2
    monkeypatch.setattr(threads, "_affinity", lambda: {3})  # taskset -c 3
    assert available_cores() == 1


def test_hyperthread_siblings_count_as_one_core():
    cpus = set(os.sched_getaffinity(0))
    assert 1 <= threads._physical_cores(cpus) <= len(cpus)


def test_processes_count_ddp_ranks_and_parallel_trials(tmp_path):
    single = compose_config(["trainer.accelerator=cpu"], tmp_path)
    ddp = compose_config(["trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu"], tmp_path)
    assert processes_per_machine(single) == 1
    assert processes_per_machine(single, parallel_trials=2) == 2
    assert processes_per_machine(ddp) == 2
    assert processes_per_machine(ddp, parallel_trials=2) == 4


def test_explicit_settings_env_and_bad_values(monkeypatch):
    assert resolve_threads(3)[0] == 3 and resolve_threads("2")[0] == 2
    assert resolve_threads(None) == (None, "threads=null: torch's default")
    monkeypatch.setenv("OMP_NUM_THREADS", "5")
    assert resolve_threads("auto") == (5, "auto: OMP_NUM_THREADS=5")
    for bad in (0, -1, "many", 1.5):
        with pytest.raises(ConfigError, match="threads="):
            resolve_threads(bad)


def test_apply_sets_torch_and_logs_why(caplog):
    with caplog.at_level(logging.INFO, logger="recsys.perf.threads"):
        assert apply_threads(1) == 1 == torch.get_num_threads()
    assert "intra-op threads: 1 (threads=1)" in caplog.text
    assert apply_threads("auto", processes=64) == 1  # more processes than cores: one each


def test_train_config_asks_for_auto(tmp_path):
    assert compose_config([], tmp_path).threads == "auto"


@pytest.mark.slow
def test_benchmark_smoke_runs_and_writes_nothing():
    """`python -m benchmarks.threads --smoke` (under 20 s on a 2-core box): all three settings."""
    results = ROOT / "benchmarks" / "results" / "threads_cpu.json"
    before = results.read_bytes() if results.exists() else None
    proc = subprocess.run([sys.executable, "-m", "benchmarks.threads", "--smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout[proc.stdout.index("{\n") :])
    assert set(out["settings"]) == {"1", "2", "auto"}
    assert all(s["epoch_s"] > 0 for s in out["settings"].values())
    assert (results.read_bytes() if results.exists() else None) == before
