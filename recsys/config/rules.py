"""Allowed ranges of the hyper-parameters: by the `_target_` that takes them (wherever that mapping
sits: `model.scorer`, `model.scorer.base`, `model.base.scorer`), or by dotted path for keys of plain
mappings. A value out of range would otherwise train a degenerate model, fail
deep inside torch, or divide by zero mid-run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """A number in [low, high] (either end open or absent), optionally an integer, or one of `also`."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    also: tuple[Any, ...] = ()

    def ok(self, value: Any) -> bool:
        if any(value == a and type(value) is type(a) for a in self.also):
            return True
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or (
            value < self.high or (value == self.high and not self.high_open)
        )

    def text(self) -> str:
        kind, num = ("an integer", "{:d}") if self.integer else ("a finite number", "{:g}")
        low, high = (None if b is None else num.format(int(b) if self.integer else b)
                     for b in (self.low, self.high))  # fmt: skip
        if self.low is not None and self.high is not None:
            left, right = "(" if self.low_open else "[", ")" if self.high_open else "]"
            bounds = f" in {left}{low}, {high}{right}"
        elif self.low is not None:
            bounds = f" {'>' if self.low_open else '>='} {low}"
        elif self.high is not None:
            bounds = f" {'<' if self.high_open else '<='} {high}"
        else:
            bounds = ""
        extra = "".join(f" or {a!r}" if a is not None else " or null" for a in self.also)
        return f"{kind}{bounds}{extra}"


@dataclass(frozen=True)
class OneOf:
    choices: tuple[Any, ...]

    def ok(self, value: Any) -> bool:
        return value in self.choices

    def text(self) -> str:
        return "one of " + " | ".join("null" if c is None else str(c) for c in self.choices)


@dataclass(frozen=True)
class ListOf:
    """A non-empty list whose every element passes `item` (an empty list only when `empty`)."""

    item: Range
    empty: bool = False

    def ok(self, value: Any) -> bool:
        if not isinstance(value, list | tuple) or (not value and not self.empty):
            return False
        return all(self.item.ok(v) for v in value)

    def text(self) -> str:
        return f"a {'' if self.empty else 'non-empty '}list, each {self.item.text()}"


POSITIVE_INT = Range(1, integer=True)
COUNT = Range(0, integer=True)
POSITIVE = Range(0, low_open=True)
NON_NEGATIVE = Range(0)
DROPOUT = Range(0, 1, high_open=True)
FRACTION = Range(0, 1, high_open=True)
SHARE = Range(0, 1, low_open=True)  # (0, 1]: a keep rate, a step size
SEED = Range(0, 2**32 - 1, integer=True)
LR = {"lr": POSITIVE, "weight_decay": NON_NEGATIVE, "table_lr": POSITIVE, "eps": POSITIVE}
SOFTMAX = {"temperature": POSITIVE, "logq_correction": OneOf(("counts", "none"))}

BY_TARGET: dict[str, dict[str, Any]] = {
    "recsys.models.components.mf.MatrixFactorization": {"dim": POSITIVE_INT, "init_std": POSITIVE},
    "recsys.models.components.towers.TwoTower": {
        "dim": POSITIVE_INT, "id_dim": POSITIVE_INT, "feature_dim": POSITIVE_INT,
        "hidden": ListOf(POSITIVE_INT, empty=True), "user_id_dropout": DROPOUT,
        "item_id_dropout": DROPOUT, "dropout": DROPOUT, "temperature": POSITIVE,
        "min_temperature": POSITIVE, "numeric_buckets": POSITIVE_INT, "init_std": POSITIVE,
        "numeric_encoding": OneOf(("normalize", "bucketize", "both")),
    },
    "recsys.models.components.propensity.WithPropensityHead": {
        "hidden": ListOf(POSITIVE_INT, empty=True), "dropout": DROPOUT, "context_dim": COUNT,
    },
    "recsys.models.losses.SampledSoftmaxLoss": SOFTMAX,
    "recsys.models.losses.InBatchSoftmaxLoss": {
        **SOFTMAX, "logq_correction": OneOf(("counts", "streaming", "none")), "streaming_alpha": SHARE,
    },
    "recsys.models.retrieval.RetrievalModule": {
        "embedding_l2": NON_NEGATIVE, "ks": ListOf(POSITIVE_INT), "retrieval_weight": NON_NEGATIVE,
        "propensity_weight": NON_NEGATIVE, "gradient_clip_val": Range(0, low_open=True, also=(None,)),
        "scheduler_interval": OneOf(("epoch", "step")),
    },
    "recsys.optim.adam.adam": LR,
    "recsys.optim.adam.adamw": LR,
    "recsys.optim.sparse_adam.sparse_dense_adam": LR,
    "recsys.optim.schedules.warmup_cosine": {"warmup_steps": COUNT, "min_lr_ratio": Range(0, 1)},
    "recsys.data.datamodule.InteractionDataModule": {
        "batch_size": POSITIVE_INT, "num_negatives": COUNT,
        "negative_sampling": OneOf(("uniform", "popularity")),
        "negative_alpha": Range(0, 1),  # 0 = uniform, 1 = in proportion to popularity
        "eval_chunk_elements": POSITIVE_INT, "steps_per_batch": POSITIVE_INT,
        "label_negative_keep_rate": SHARE,
    },
    "recsys.data.sources.synthetic.SyntheticSource": {
        "num_users": POSITIVE_INT, "num_items": POSITIVE_INT, "num_groups": POSITIVE_INT,
        "latent_dim": POSITIVE_INT, "mean_interactions": POSITIVE, "popularity_skew": NON_NEGATIVE,
        "temperature": POSITIVE, "num_categories": POSITIVE_INT, "valid_fraction": FRACTION,
        "test_fraction": FRACTION,
    },
    "recsys.data.sources.movielens.MovieLens100K": {
        "valid_fraction": FRACTION, "split": OneOf(("u1", "u2", "u3", "u4", "u5", "ua", "ub")),
    },
    "recsys.data.sources.cold_start.ColdStartSource": {"cold_fraction": FRACTION},
    "pytorch_lightning.Trainer": {
        "max_epochs": Range(1, integer=True, also=(-1, None)),
        "check_val_every_n_epoch": Range(1, integer=True, also=(None,)),
        "log_every_n_steps": Range(1, integer=True, also=(None,)),
        "num_nodes": POSITIVE_INT,
    },
    "pytorch_lightning.callbacks.EarlyStopping": {"patience": COUNT, "min_delta": NON_NEGATIVE},
    "pytorch_lightning.callbacks.ModelCheckpoint": {"save_top_k": Range(-1, integer=True)},
}  # fmt: skip

BY_PATH: dict[str, Any] = {
    "seed": SEED,
    "lr_scaling": OneOf(("sqrt", "linear", "none")),
    "model.dim": POSITIVE_INT,
    "model.base.dim": POSITIVE_INT,
    "model.calibration.num_bins": POSITIVE_INT,
    "model.calibration.method": OneOf(("platt", "temperature", "isotonic", "none")),
    "data.split.method": OneOf(("random", "leave_last_n", "temporal")),
    "data.split.valid_fraction": FRACTION,
    "data.split.test_fraction": FRACTION,
    "data.split.test_n": COUNT,
    "data.split.valid_n": COUNT,
    "data.cleaning.on_invalid": OneOf(("error", "drop")),
    "data.cleaning.min_user_interactions": COUNT,
    "data.cleaning.min_item_interactions": COUNT,
}

ENTRY_PATHS: dict[str, dict[str, Any]] = {  # scripts other than train: conf/<entry>.yaml
    "export": {
        "checkpoint": OneOf(("best", "last")),
        "format": OneOf(("torchscript", "pt2", "both")),
        "onnx": OneOf((True, False)), "triton": OneOf((True, False)),
        "triton_max_batch_size": POSITIVE_INT,
        "num_popular": POSITIVE_INT, "seed": SEED, "verify.users": POSITIVE_INT,
        "verify.k": POSITIVE_INT, "verify.atol": NON_NEGATIVE,
    },
    "segment": {
        "k": Range(2, integer=True, also=("auto",)), "k_min": Range(2, integer=True),
        "k_max": Range(2, integer=True), "feature_weight": NON_NEGATIVE,
        "normalize": OneOf(("l2", "standard", "none")), "n_init": POSITIVE_INT,
        "silhouette_sample": Range(2, integer=True), "silhouette_tolerance": Range(0, 1),
        "top": POSITIVE_INT, "seed": SEED,
    },
    "audience": {"size": Range(1, integer=True, also=(None,)),
                 "lift_items": OneOf(("requested", "all"))},
    "ab_plan": {"baseline_rate": Range(0, 1, low_open=True, high_open=True),
                "mde": POSITIVE, "alpha": Range(0, 1, low_open=True, high_open=True),
                "power": Range(0, 1, low_open=True, high_open=True), "arms": Range(2, integer=True),
                "daily_users": Range(0, low_open=True, also=(None,))},
}  # fmt: skip


def path_rule(rules: dict[str, Any], path: str) -> Any:
    """The rule for the key at dotted `path`, or None."""
    return rules.get(path)
