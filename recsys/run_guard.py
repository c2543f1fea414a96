"""One run per run directory, and no half-made run directory after a failed start.

A second run into a directory that holds a run would overwrite its metrics, checkpoints and
vocabularies, so it is refused unless it resumes from a checkpoint of that directory. A lock file
(flock: the kernel drops it when its process dies, so a lock left by a killed run is never stale)
keeps two runs from training in one directory at once. A run that fails before training starts
(bad data path, bad config) removes what it wrote; Hydra's launch record (`.hydra/`, the log) and
the directory go too when they are all the directory holds, i.e. this launch made them.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
from pathlib import Path

from pytorch_lightning.utilities.rank_zero import rank_zero_only

from recsys.errors import RunError
from recsys.run_dir import RunDir

log = logging.getLogger(__name__)

# What Hydra writes into a run directory before `train` runs.
HYDRA_LAUNCH_FILES = {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml"}


def _process_start_time() -> float | None:
    """Wall-clock start of this process (Linux /proc), or None where unknown."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime")
        )
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _tree(root: Path) -> set[str]:
    """Every file and folder under `root`, relative, with folders ending in '/'."""
    if not root.is_dir():
        return set()
    entries = set()
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        entries.add(rel + "/" if path.is_dir() and not path.is_symlink() else rel)
    return entries


def holds_run(run: RunDir) -> bool:
    """Whether recsys wrote a run into `run`. Hydra's `.hydra/config.yaml` and log do not count:
    Hydra writes them into the directory before recsys starts."""
    written = (run.config_path, run.path("metrics.json"), run.path("data_report.json"))
    written += (run.path("training_state.pt"), run.vocab_dir)
    has_checkpoints = run.checkpoints.is_dir() and any(run.checkpoints.iterdir())
    return has_checkpoints or any(p.exists() for p in written)


def _is_launch_record(rel: str) -> bool:
    return (
        rel in HYDRA_LAUNCH_FILES or rel == ".hydra/" or ("/" not in rel and rel.endswith(".log"))
    )


class RunGuard:
    """Context manager around one run: refuses a used directory, holds the lock, and cleans up a
    start that failed. Only global rank zero guards; DDP's other ranks share its directory."""

    def __init__(self, run: RunDir, ckpt_path: str | None = None):
        self.run, self.ckpt_path = run, ckpt_path
        self.active = rank_zero_only.rank == 0
        self.started_training = False
        self._before: set[str] = set()
        self._existed = False
        self._lock = None

    def _resumes_here(self) -> bool:
        if not self.ckpt_path:
            return False
        ckpt = Path(self.ckpt_path).resolve()
        return self.run.root.resolve() in ckpt.parents

    def __enter__(self) -> RunGuard:
        if not self.active:
            return self
        self._existed = self.run.root.exists()
        self._before = _tree(self.run.root)
        self._acquire_lock()
        try:
            if holds_run(self.run) and not self._resumes_here():
                last = self.run.checkpoints / "last.ckpt"
                resume = f", or resume it with ckpt_path={last}" if last.is_file() else ""
                raise RunError(
                    f"{self.run.root} already holds a recsys run (metrics, checkpoints or config); "
                    f"choose another hydra.run.dir{resume}"
                )
        except BaseException:
            self._release_lock()
            raise
        return self

    def training_started(self) -> None:
        """From here on a failure leaves the run directory as it is (checkpoints, logs)."""
        self.started_training = True

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.active:
            return
        try:
            if exc_type is not None and not self.started_training:
                self._remove_what_this_run_wrote()
        finally:
            self._release_lock()

    # ----- the lock -----
    def _acquire_lock(self) -> None:
        path = self.run.lock_path
        path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            handle = path.open("a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another process"
                handle.close()
                raise RunError(
                    f"{self.run.root}: another run is training in this directory ({holder}); "
                    "wait for it or choose another hydra.run.dir"
                ) from None
            # The holder before us may have removed the file after we opened it: lock the file
            # that is at the path now, or two runs could each hold a lock on a different inode.
            if path.exists() and os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino:
                break
            handle.close()
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._lock = handle

    def _release_lock(self) -> None:
        if self._lock is None:
            return
        self.run.lock_path.unlink(missing_ok=True)  # while still held: no one locks a doomed file
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()
        self._lock = None

    # ----- cleanup of a failed start -----
    def _remove_what_this_run_wrote(self) -> None:
        root = self.run.root
        lock = self.run.lock_path.relative_to(root).as_posix()
        new = _tree(root) - self._before - {lock}
        for rel in sorted(new, reverse=True):  # children before their folders
            path = root / rel
            if rel.endswith("/"):
                if not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink(missing_ok=True)
        if self._existed and not self._only_this_launch(self._before):
            return
        for rel in sorted(self._before, reverse=True):
            path = root / rel
            if rel.endswith("/"):
                if path.is_dir() and not any(path.iterdir()):
                    path.rmdir()
            else:
                path.unlink(missing_ok=True)
        if root.is_dir() and not any(p for p in root.iterdir() if p != self.run.lock_path):
            self.run.lock_path.unlink(missing_ok=True)
            root.rmdir()
            log.info("removed %s: the run failed before training started", root)

    def _only_this_launch(self, entries: set[str]) -> bool:
        """The directory held only Hydra's record of this launch (written since this process began)."""
        if not entries or not all(_is_launch_record(rel) for rel in entries):
            return False
        started = _process_start_time()
        if started is None:
            return False
        return all(
            (self.run.root / rel).stat().st_mtime >= started - 1.0
            for rel in entries
            if not rel.endswith("/")
        )
