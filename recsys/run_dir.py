"""`RunDir` owns every path and file of a training run directory: one writer and one reader each.

Training writes the run through it; export, recommend, marketing and compare read a run only
through it. Everything serving needs (sizes, side features, seen items, item counts, calibration)
is saved at training time, so reading a run never touches the training data files; only
`RunDir.load_data` rebuilds them, for labels and re-evaluation. Every file is written atomically
(temp file, fsync, rename): a crash or a full disk leaves the old file whole.
Checkpoints are read with `weights_only=True`: a run directory is data, never code.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from recsys import run_loading
from recsys.atomic_files import write_atomic, write_json
from recsys.config.trusted import load_trusted
from recsys.errors import DataError, RunError
from recsys.models.contracts import PropensityScorer, Scorer, ScorerInputs

if TYPE_CHECKING:
    from recsys.data.datamodule import InteractionDataModule

SPLITS = ("train", "valid", "test")
# The only characters a one-id-per-line vocabulary cannot hold; every other character (tabs,
# spaces, U+2028, ...) is kept as it is, because lines are split on "\n" alone.
LINE_ENDS = ("\n", "\r")


def encode_vocabulary(ids, what: str) -> bytes:
    """One id per line, UTF-8, "\n"-terminated; an id holding a line end is refused by name."""
    lines = [str(x) for x in ids]
    for index, value in enumerate(lines):
        if any(end in value for end in LINE_ENDS):
            raise DataError(
                f"{what} id at index {index} ({value!r}) holds a line break; ids must fit on one line"
            )
    return "".join(f"{v}\n" for v in lines).encode("utf-8")


def decode_vocabulary(data: bytes) -> list[str]:
    """The inverse of `encode_vocabulary` (serving/loader.py reads the same way, without recsys)."""
    return data.decode("utf-8").split("\n")[:-1]


class RunDir:
    """A training run's directory. Paths are properties; writers and readers are methods."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._state: dict | None = None  # training_state.pt, read once

    # ----- paths -----
    @property
    def config_path(self) -> Path:
        return self.root / ".hydra" / "resolved.yaml"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def vocab_dir(self) -> Path:
        return self.root / "vocab"

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    def path(self, name: str) -> Path:
        """A report file of the run (`metrics.json`, `propensity_lift.png`, ...)."""
        return self.root / name

    @property
    def lock_path(self) -> Path:
        """Held by the run training here (recsys/run_guard.py); gone when it ends."""
        return self.root / ".recsys.lock"

    # ----- writers -----
    def write_config(self, cfg: DictConfig) -> None:
        """The resolved config: what the run's scorer is rebuilt from (Hydra keeps the unresolved)."""
        write_atomic(self.config_path, OmegaConf.to_yaml(cfg, resolve=True).encode())

    def write_json(self, name: str, obj: dict) -> None:
        write_json(self.path(name), obj)

    def write_vocabularies(self, user_ids, item_ids, item_titles=None) -> None:
        """vocab/users.txt, items.txt (line i = raw id of index i), item_titles.txt where known.
        Every file is encoded before any is written: a refused id leaves all of them as they were."""
        files = {"users": user_ids, "items": item_ids}
        if item_titles is not None:
            files["item_titles"] = item_titles
        encoded = {name: encode_vocabulary(ids, name) for name, ids in files.items()}
        for name, data in encoded.items():
            write_atomic(self.vocab_dir / f"{name}.txt", data)

    def write_per_user_metrics(self, table: dict[str, Tensor], user_ids: np.ndarray) -> None:
        """One row per test user: raw id, index and every ranking metric (for paired comparisons)."""
        if not table:
            return
        idx = table["user_idx"].numpy()
        frame = pd.DataFrame({"user_id": user_ids[idx].astype(str), "user_idx": idx})
        for name, values in table.items():
            if name != "user_idx":
                frame[name] = values.numpy()
        frame = frame.sort_values("user_idx")
        write_atomic(self.path("per_user_metrics.parquet"), frame.to_parquet(index=False))

    def write_training_state(
        self, inputs: ScorerInputs, seen: dict[str, tuple[Tensor, Tensor]]
    ) -> None:
        """What serving needs from the data: the scorer's inputs, and each split's (user, item)
        pairs (seen items to exclude, item counts for the popularity fallback)."""
        state = {"scorer_inputs": inputs.to_state(), "seen": seen}
        write_atomic(self.path("training_state.pt"), _torch_bytes(state))
        self._state = None

    def write_calibration(self, state: dict[str, Tensor]) -> None:
        """The propensity head's calibration, fitted after training; the checkpoint stays as saved."""
        write_atomic(self.path("calibration.pt"), _torch_bytes(state))

    # ----- readers -----
    def config(self) -> DictConfig:
        """The resolved config, after every class it names passed `recsys.config.trusted`: a run
        directory from elsewhere is data, so its config may build recsys's own classes only."""
        if not self.root.is_dir():
            what = "is a file, not a run directory" if self.root.exists() else "does not exist"
            raise RunError(f"{self.root}: {what}; pass the folder scripts/train.py wrote")
        if not self.config_path.is_file():
            raise RunError(
                f"{self.root}: not a recsys run directory (no .hydra/resolved.yaml); "
                "run scripts/train.py first"
            )
        return load_trusted(self.config_path)

    def read_json(self, name: str) -> dict:
        path = self.path(name)
        return json.loads(path.read_text()) if path.is_file() else {}

    def metrics(self) -> dict:
        return self.read_json("metrics.json")

    def per_user_metrics(self) -> pd.DataFrame | None:
        path = self.path("per_user_metrics.parquet")
        return pd.read_parquet(path) if path.is_file() else None

    def vocabulary(self, name: str) -> list[str]:
        path = self.vocab_dir / f"{name}.txt"
        if not path.is_file():
            raise RunError(f"{path}: missing; the run did not finish writing its vocabularies")
        try:
            return decode_vocabulary(path.read_bytes())
        except UnicodeDecodeError as err:
            raise RunError(
                f"{path}: not UTF-8 at byte {err.start}; not written by recsys"
            ) from None

    def has_vocabulary(self, name: str) -> bool:
        return (self.vocab_dir / f"{name}.txt").is_file()

    def _training_state(self) -> dict:
        path = self.path("training_state.pt")
        if not path.is_file():
            raise RunError(
                f"{self.root}: no training_state.pt (written by a recsys without it); "
                f"train it again with hydra.run.dir={self.root}"
            )
        if self._state is None:
            self._state = run_loading.training_state(path)
        return self._state

    def scorer_inputs(self) -> ScorerInputs:
        return run_loading.scorer_inputs(self._training_state(), self.path("training_state.pt"))

    def seen_pairs(self, split: str) -> tuple[Tensor, Tensor]:
        """(users, items) of one split, as indices into the run's vocabularies."""
        if split not in SPLITS:
            raise RunError(f"unknown split {split!r}: one of {SPLITS}")
        pairs = self._training_state()["seen"]
        if not isinstance(pairs, dict) or split not in pairs:
            raise RunError(f"{self.path('training_state.pt')}: no {split} pairs under seen")
        return pairs[split]

    def find_checkpoint(self, which: str = "best") -> Path:
        """'best' (the epochNNN file ModelCheckpoint kept), 'last', or an explicit path."""
        folder = self.checkpoints
        if which not in ("best", "last"):
            path = Path(which)
            if not path.is_file():
                raise RunError(f"{path}: checkpoint not found")
            return path
        if which == "last" and (folder / "last.ckpt").is_file():
            return folder / "last.ckpt"
        best = sorted(folder.glob("epoch*.ckpt"), key=lambda p: p.stat().st_mtime)
        if best:
            return best[-1]
        if (folder / "last.ckpt").is_file():
            return folder / "last.ckpt"
        raise RunError(
            f"{self.root}: no checkpoint in {folder}; train it again with hydra.run.dir={self.root}"
        )

    def load_scorer(
        self, checkpoint: str | Path = "best", map_location: str | torch.device = "cpu"
    ) -> tuple[Scorer, Path]:
        """The trained scorer in fp32 eval mode (a bf16-mixed GPU run loads on a CPU-only machine),
        with its calibration where one was fitted; returns (scorer, checkpoint path)."""
        cfg = self.config()  # first: a folder that is no run says so, not "no checkpoint"
        ckpt = self.find_checkpoint(str(checkpoint))
        scorer = run_loading.build_run_scorer(cfg, self.scorer_inputs(), self.config_path)
        run_loading.load_checkpoint_into(
            scorer, ckpt, map_location, check=self.check_checkpoint_is_ours
        )
        calibration = self.path("calibration.pt")
        if calibration.is_file() and isinstance(scorer, PropensityScorer):
            fitted = run_loading.read_torch_file(calibration, "calibration")
            scorer.load_state_dict({**scorer.state_dict(), **fitted})
        return scorer.float().eval(), ckpt

    def check_checkpoint_is_ours(self, checkpoint: dict, path: Path) -> None:
        """Refuse a checkpoint trained on other data than this run's (recsys/run_identity.py)."""
        from recsys.run_identity import check_checkpoint_data

        own = self.read_json("data_report.json").get("data_fingerprint")
        check_checkpoint_data(checkpoint, path, own)

    def load(
        self, checkpoint: str | Path = "best", map_location: str | torch.device = "cpu"
    ) -> TrainedRun:
        """The run's config and trained scorer (see `load_scorer`); reads no data file."""
        scorer, ckpt = self.load_scorer(checkpoint, map_location)
        return TrainedRun(self, self.config(), scorer, ckpt)

    def load_data(self) -> InteractionDataModule:
        """The run's datamodule with its data loaded (`.data`), rebuilt from the saved config.

        The one place that reads the training data files again, for what the run directory does
        not keep: labels (segment conversion rates, the audience lift table on test exposures) and
        re-evaluation. Refused when the rebuilt data index users or items differently from the
        run's vocabularies: the data changed since training, so indices no longer mean the same ids.
        """
        from recsys.data.datamodule import build_datamodule  # reading a run needs no data module

        cfg = self.config()
        datamodule = build_datamodule(cfg.data, cfg.seed)
        data = datamodule.load()
        for name, ids in (("users", data.user_ids), ("items", data.item_ids)):
            if self.vocabulary(name) != [str(x) for x in ids]:
                raise RunError(
                    f"{self.vocab_dir / name}.txt: differs from the {name} of the rebuilt data; "
                    "the data changed since training, so the model's indices no longer mean "
                    "the same ids"
                )
        return datamodule


@dataclass
class TrainedRun:
    """A finished run loaded back by `RunDir.load`: its directory, resolved config and scorer."""

    run_dir: RunDir
    cfg: DictConfig
    scorer: Scorer
    checkpoint_path: Path

    @property
    def metrics(self) -> dict:
        return self.run_dir.metrics()


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
