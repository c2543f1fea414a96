"""The one LightningModule that trains any scorer on the contract (`user_embedding`, `item_embedding`,
`score`) with an injected loss, and evaluates it by full ranking over the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from recsys.metrics.classification import binary_auc
from recsys.metrics.evaluate import rank_batch
from recsys.metrics.ranking import METRIC_NAMES, RankingAccumulator
from recsys.models.contracts import Scorer
from recsys.models.losses import RetrievalLoss
from recsys.optim.sparse_adam import parameter_groups
from recsys.perf.compiling import CompiledOrEager


def squared_norm(x: Tensor) -> Tensor:
    """Sum of squares as one dot product: `x.pow(2).sum()`'s backward is a second pass of pow over
    the tensor, the dot's is one scaled copy; same value and gradient (2x)."""
    flat = x.reshape(-1)
    return torch.dot(flat, flat)


class RetrievalModule(pl.LightningModule):
    """Optimisation is manual: a training batch may hold several minibatches (TrainBatches'
    `steps_per_batch`), each one optimizer step, so Lightning's per-batch overhead is amortised.

    optimizer: a factory called with `parameter_groups(self)` (dense parameters, and sparse tables
        marked `row_sparse`), e.g. a `_partial_` of `recsys.optim.adam.adam`.
    scheduler: a factory called with `optimizer=`; with `scheduler_interval="step"` also with
        `total_steps=` (the fit's optimizer steps, as torch's OneCycleLR names it), and stepped after
        every optimizer step; with "epoch", stepped once an epoch after validation.
    """

    def __init__(
        self,
        scorer: Scorer,
        loss: RetrievalLoss,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        scheduler_interval: str = "epoch",
        embedding_l2: float = 0.0,
        ks: tuple[int, ...] = (10, 20),
        monitor: str = "val/ndcg@10",
        retrieval_weight: float = 1.0,
        propensity_weight: float = 0.0,
        gradient_clip_val: float | None = None,
        compile: bool = False,
    ):
        super().__init__()
        self.automatic_optimization = False  # see the class docstring; steps in training_step
        # The scorer and loss are modules (saved in state_dict); the rest is plain config.
        self.save_hyperparameters(ignore=["scorer", "loss", "optimizer", "scheduler"])
        self.scorer, self.loss_fn = scorer, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        if scheduler_interval not in ("epoch", "step"):
            raise ValueError(
                f"model.module.scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}"
            )
        self.scheduler_interval = scheduler_interval
        self.embedding_l2, self.ks = embedding_l2, list(ks)
        # Multi-task: loss = retrieval_weight * retrieval + propensity_weight * BCE on labelled rows.
        self.retrieval_weight, self.propensity_weight = retrieval_weight, propensity_weight
        # Gradient-norm clipping here: trainer.gradient_clip_val applies to automatic optimisation only.
        self.gradient_clip_val = gradient_clip_val
        # torch.compile of the loss (embeddings -> terms) and of optimizers that take `compile`.
        # (Not `self.compile`: that would shadow nn.Module.compile().)
        self.compile_training = compile
        self._loss_terms: Callable[..., dict[str, Tensor]] | None = None
        self.per_user_results: dict[str, Tensor] = {}
        self._acc: RankingAccumulator | None = None
        self._tracked: dict[str, Tensor] = {}
        self._tracked_steps: dict[str, int] = {}

    def training_step(
        self, batch: dict[str, Tensor] | list[dict[str, Tensor]], batch_idx: int
    ) -> None:
        """One optimizer step per minibatch in the batch (a list of them, or a single dict)."""
        optimizer = self.optimizers()
        scheduler = self.lr_schedulers() if self.scheduler_interval == "step" else None
        for minibatch in batch if isinstance(batch, list) else [batch]:
            loss = self.training_loss(minibatch)
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            if self.gradient_clip_val:
                self.clip_gradients(optimizer, self.gradient_clip_val, "norm")
            optimizer.step()
            if scheduler is not None:
                scheduler.step()

    def training_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """The weighted training loss of one minibatch; its parts are tracked for the epoch means."""
        users, items = batch["users"], batch["items"]
        negatives = batch.get("negatives")  # absent when data.loader.num_negatives=0
        if negatives is None or not self.loss_fn.uses_negatives:
            negatives = items.new_zeros((items.shape[0], 0))  # in-batch only: skip embedding them
        user = self.scorer.user_embedding(users)  # (B, D)
        both = self.scorer.item_embedding(torch.cat([items, negatives.reshape(-1)]))  # (B + B*N, D)
        terms = self._terms_function()(user, both, items, negatives)
        loss = self.retrieval_weight * terms["train/loss_retrieval"]
        if self.propensity_weight > 0:
            positive = both[: items.shape[0]]
            terms["train/loss_propensity"] = bce = self._propensity_loss(batch, user, positive)
            loss = loss + self.propensity_weight * bce
        if "train/loss_l2" in terms:
            loss = loss + terms["train/loss_l2"]
        terms["train/loss"] = loss
        for name, value in terms.items():
            self.track(name, value)
        return loss

    def retrieval_terms(
        self, user: Tensor, both: Tensor, items: Tensor, negatives: Tensor
    ) -> dict[str, Tensor]:
        """The loss on the batch's embeddings, its logged parts, and the row L2 (when on)."""
        b, n = negatives.shape
        # split, not slicing: its backward is one concatenation, not a zero-filled copy per slice.
        positive, negative = both.split([b, b * n])
        negative = negative.view(b, n, both.shape[-1])
        terms = {"train/loss_retrieval": self.loss_fn(user, positive, negative, items, negatives)}
        # Losses that expose their terms (InBatchSoftmaxLoss.parts) get them logged as epoch means.
        for name, value in self.loss_fn.parts.items():
            terms[f"train/{name}"] = value
        if self.embedding_l2 > 0:
            # L2 on the rows used in this batch only: the usual BPR regulariser, also right for sparse updates.
            terms["train/loss_l2"] = (
                self.embedding_l2 * (squared_norm(user) + squared_norm(both)) / b
            )
        return terms

    def _terms_function(self) -> Callable[..., dict[str, Tensor]]:
        """`retrieval_terms`, compiled once when `compile` is on (one fused forward and backward)."""
        if not self.compile_training:
            return self.retrieval_terms
        if self._loss_terms is None:
            self._loss_terms = CompiledOrEager(self.retrieval_terms, "the training loss")
        return self._loss_terms

    def _propensity_loss(self, batch: dict[str, Tensor], user: Tensor, item: Tensor) -> Tensor:
        """BCE of the propensity head on the batch rows' 0/1 labels (exposed, converted or not)."""
        if "labels" not in batch:
            raise ValueError(
                "model.module.propensity_weight > 0 needs labelled training rows; this data has no labels"
            )
        logit = self.scorer.logit_from_embeddings(user, item, batch.get("context"))  # (B,)
        return F.binary_cross_entropy_with_logits(logit.float(), batch["labels"].float())

    def _propensity_eval(self, stage: str) -> None:
        """Uncalibrated log loss and AUC of the head on validation's labelled rows (model selection)."""
        datamodule = self.trainer.datamodule
        if self.propensity_weight <= 0 or stage != "val" or datamodule is None:
            return
        rows = datamodule.labelled_rows(stage)
        if rows is None:
            return
        users, items, labels = (rows[k].to(self.device) for k in ("users", "items", "labels"))
        logits = torch.cat(
            [
                self.scorer.propensity_logit(u, i).float()
                for u, i in zip(users.split(2**16), items.split(2**16), strict=True)
            ]
        )
        labels = labels.float()
        # Every rank scores all validation rows: identical values, "synced" as in _end_eval.
        sync = {"sync_dist": self.trainer.world_size > 1, "reduce_fx": "max"}
        self.log(
            f"{stage}/propensity/logloss",
            F.binary_cross_entropy_with_logits(logits, labels),
            **sync,
        )
        self.log(f"{stage}/propensity/auc", binary_auc(logits, labels).to(self.device), **sync)

    # ----- epoch-level training scalars without a per-step logging cost -----
    def track(self, name: str, value: Tensor) -> None:
        """Add a per-step scalar to an on-device running sum, logged as its epoch mean.

        `self.log` in every step costs more than an MF step itself (Lightning moves its result
        collection each call); summing detached tensors costs one add and never syncs the device.
        """
        value = value.detach().float()
        total = self._tracked.get(name)
        self._tracked[name] = value if total is None else total + value
        self._tracked_steps[name] = self._tracked_steps.get(name, 0) + 1

    def running_total(self, name: str) -> Tensor | None:  # the epoch's on-device sum so far
        return self._tracked.get(name)

    def on_train_epoch_start(self) -> None:
        self._tracked, self._tracked_steps = {}, {}

    def on_train_epoch_end(self) -> None:
        self._step_scheduler()
        for name, total in self._tracked.items():
            self.log(name, total / self._tracked_steps[name], prog_bar=name == "train/loss")
        for name, value in self.scorer.training_scalars().items():  # e.g. a learned temperature
            self.log(f"train/{name}", value)

    def _step_scheduler(self) -> None:
        """Epoch-interval LR schedule (manual optimisation steps it; validation has run by now)."""
        scheduler = self.lr_schedulers()
        if scheduler is None or self.scheduler_interval != "epoch":
            return
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            value = self.trainer.callback_metrics.get(self.hparams.monitor)
            if value is not None:  # no validation this epoch: nothing to react to
                scheduler.step(value)
            return
        scheduler.step()

    # ----- full-ranking evaluation, one chunk of users per batch -----
    def _start_eval(self) -> None:
        self._acc = RankingAccumulator(self.ks, self.scorer.num_items, keep_per_user=True)

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        topk = rank_batch(self.scorer, batch, max(self.ks), self.trainer.state.stage)
        self._acc.update(
            batch["users"],
            topk,
            (batch["target_rows"], batch["target_items"]),
            batch["num_targets"],
        )

    def _end_eval(self, stage: str) -> None:
        if self.trainer.world_size > 1:
            metrics, self.per_user_results = self._gather_eval()
        else:
            metrics, self.per_user_results = self._acc.compute(), self._acc.per_user_table()
        # Gathered, so identical on every rank: checkpointing and early stopping agree. The max
        # "sync" keeps them bit-exact (a mean over ranks could round) and tells Lightning they are global.
        distributed = self.trainer.world_size > 1
        self.log_dict(
            {f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=distributed, reduce_fx="max"
        )
        self._propensity_eval(stage)

    def _gather_eval(self) -> tuple[dict[str, float], dict[str, Tensor]]:
        """DDP: every rank ranked a disjoint slice of the users; gather all per-user rows and the
        recommended-item sets, then take the same means a single process would (no padded rows count).
        """
        acc = self._acc
        names = [f"{m}@{k}" for k in self.ks for m in METRIC_NAMES]
        table = acc.per_user_table()
        columns = [table.get(n, torch.zeros(0)).double() for n in ["user_idx", *names]]
        rows = torch.stack(columns, 1).to(self.device)  # (U_rank, 1 + M)
        counts = self.all_gather(torch.tensor(rows.shape[0], device=self.device)).view(-1).tolist()
        padded = rows.new_zeros(max(counts), rows.shape[1])
        padded[: rows.shape[0]] = rows
        gathered = self.all_gather(padded).view(len(counts), max(counts), -1)
        rows = torch.cat([gathered[r, :n] for r, n in enumerate(counts)]).cpu()
        rows = rows[rows[:, 0].argsort()]
        metrics = {
            n: float(rows[:, i + 1].sum()) / max(1, rows.shape[0]) for i, n in enumerate(names)
        }
        for k in self.ks:
            seen = acc.recommended.get(k, torch.zeros(acc.num_items, dtype=torch.bool))
            union = self.all_gather(seen.to(self.device, torch.uint8)).view(-1, acc.num_items)
            metrics[f"coverage@{k}"] = float(union.amax(0).sum()) / acc.num_items
        per_user = {"user_idx": rows[:, 0].long()}
        per_user.update({n: rows[:, i + 1].float() for i, n in enumerate(names)})
        return metrics, per_user

    def on_validation_epoch_start(self) -> None:
        self._start_eval()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_validation_epoch_end(self) -> None:
        self._end_eval("val")

    def on_test_epoch_start(self) -> None:
        self._start_eval()

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._eval_step(batch)

    def on_test_epoch_end(self) -> None:
        self._end_eval("test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(parameter_groups(self))
        if self.scheduler_factory is None:
            return optimizer
        if self.scheduler_interval == "epoch":
            scheduler = self.scheduler_factory(optimizer=optimizer)
        else:
            steps_per_batch = self.trainer.datamodule.steps_per_batch
            total = int(self.trainer.estimated_stepping_batches) * steps_per_batch
            scheduler = self.scheduler_factory(optimizer=optimizer, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": self.scheduler_interval},
        }
