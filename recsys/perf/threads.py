"""How many intra-op threads a training process uses (`threads:` in conf/train.yaml).

torch's default is one thread per physical core of the machine. That is the right number only when
the process has the machine to itself. recsys's training steps are many small ops (a 1024 x 64
batch is two of aten's 32,768-element parallel grains), so each op is a short OpenMP parallel region
that ends at a barrier, and a region is as slow as its slowest thread: when another process holds a
core, the thread that waits for it costs the whole region a scheduler time slice. On a busy 2-core
machine that made CPU training 10x slower than one thread. So `threads: auto` is:

    share   = physical cores this process may use (CPU affinity, container CPU quota)
              // processes training at once on this machine (DDP ranks here x parallel sweep trials)
    threads = clamp(share - 1, 1, 8)

- `- 1` leaves a core to everything else (Lightning's loop, the loader, the OS, other users), so a
  parallel region does not wait for a descheduled thread; on 2 cores, or 2 trials on 4, that is 1.
- 8 caps it: beyond that recsys-sized ops gain little and pay more in synchronisation
  (`benchmarks/threads.py` measures 1, 2 and auto threads on the default synthetic MF).
- OMP_NUM_THREADS, when set, wins: it is someone's deliberate choice (torchrun sets 1 for its ranks).

`threads: <n>` sets n; `threads: null` leaves torch's default. It is set by the entry script
(`scripts/train.py`), visibly in the run log, never as a side effect of the library.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from omegaconf import DictConfig

from recsys.errors import ConfigError

log = logging.getLogger(__name__)

MAX_AUTO_THREADS = 8


def _affinity() -> set[int]:
    if hasattr(os, "sched_getaffinity"):
        return set(os.sched_getaffinity(0))
    return set(range(os.cpu_count() or 1))


def _physical_cores(cpus: set[int]) -> int:
    """Distinct (socket, core) pairs among `cpus`: hyperthread siblings share one core's units."""
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(
                ((topology / "physical_package_id").read_text(), (topology / "core_id").read_text())
            )
        except OSError:
            return len(cpus)  # no topology to read: count logical CPUs
    return len(cores) or len(cpus)


def _cgroup_cpu_limit() -> float | None:
    """The container's CPU quota in cores (cgroup v2 `cpu.max`), or None when unlimited."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def available_cores() -> int:
    """Physical cores this process may run on, capped by a container's CPU quota."""
    cores = _physical_cores(_affinity())
    limit = _cgroup_cpu_limit()
    if limit is not None:
        cores = min(cores, max(1, math.floor(limit)))
    return max(1, cores)


def auto_threads(cores: int, processes: int = 1) -> int:
    """The rule of the module docstring, for `cores` available and `processes` sharing them."""
    share = cores // max(1, processes)
    return max(1, min(share - 1, MAX_AUTO_THREADS))


def _count(devices) -> int:
    """Processes a DDP trainer starts on this node for its `devices` value."""
    if isinstance(devices, str):  # "auto": Lightning picks one device per process
        return 1
    if isinstance(devices, int):
        return devices if devices > 0 else max(1, torch.cuda.device_count())  # -1 = every GPU
    return max(1, len(devices))  # a list of device indices


def processes_per_machine(cfg: DictConfig, parallel_trials: int = 1) -> int:
    """Training processes on this machine at once: DDP ranks per node x trials run side by side."""
    trainer = cfg.get("trainer") or {}
    ranks = (
        _count(trainer.get("devices", 1)) if trainer.get("strategy") not in (None, "auto") else 1
    )
    return ranks * max(1, parallel_trials)


def resolve_threads(setting, processes: int = 1) -> tuple[int | None, str]:
    """(threads to set or None to leave torch alone, why) for a `threads:` value."""
    if setting is None:
        return None, "threads=null: torch's default"
    if str(setting) != "auto":
        whole = isinstance(setting, int) and not isinstance(setting, bool)
        count = int(setting) if whole or str(setting).isdigit() else 0
        if count < 1:
            raise ConfigError(f"threads={setting!r} must be auto, a whole number >= 1, or null")
        return count, f"threads={count}"
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env), f"auto: OMP_NUM_THREADS={env}"
    cores = available_cores()
    count = auto_threads(cores, processes)
    return count, f"auto: {cores} physical cores available, {processes} process(es) sharing them"


def apply_threads(setting, processes: int = 1) -> int:
    """Set torch's intra-op thread count as `setting` says, log it, and return the count in use."""
    count, why = resolve_threads(setting, processes)
    if count is not None:
        torch.set_num_threads(count)
    log.info("intra-op threads: %d (%s)", torch.get_num_threads(), why)
    return torch.get_num_threads()
