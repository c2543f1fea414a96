"""The one LightningModule that trains any scorer on the contract (`user_embedding`, `item_embedding`,
`score`) with an injected loss, and evaluates it by full ranking over the catalogue.
"""

from __future__ import annotations

from collections.abc import Callable

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from recsys.metrics.evaluate import rank_batch
from recsys.metrics.ranking import RankingAccumulator


class RetrievalModule(pl.LightningModule):
    def __init__(
        self,
        scorer: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None = None,
        embedding_l2: float = 0.0,
        ks: tuple[int, ...] = (10, 20),
        monitor: str = "val/ndcg@10",
    ):
        super().__init__()
        # The scorer and loss are modules (saved in state_dict); the rest is plain config.
        self.save_hyperparameters(ignore=["scorer", "loss", "optimizer", "scheduler"])
        self.scorer, self.loss_fn = scorer, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.embedding_l2, self.ks = embedding_l2, list(ks)
        self.per_user_results: dict[str, Tensor] = {}
        self._acc: RankingAccumulator | None = None

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        users, items = batch["users"], batch["items"]
        negatives = batch.get("negatives")  # absent when data.loader.num_negatives=0
        if negatives is None or not getattr(self.loss_fn, "uses_negatives", True):
            negatives = items.new_zeros((items.shape[0], 0))  # in-batch only: skip embedding them
        b, n = negatives.shape
        user = self.scorer.user_embedding(users)  # (B, D)
        both = self.scorer.item_embedding(torch.cat([items, negatives.reshape(-1)]))  # (B + B*N, D)
        positive, negative = both[:b], both[b:].view(b, n, both.shape[-1])
        loss = self.loss_fn(user, positive, negative, items, negatives)
        self.log("train/loss_retrieval", loss, on_step=False, on_epoch=True, batch_size=b)
        # Losses that expose their terms (InBatchSoftmaxLoss.parts): epoch means, no per-step sync.
        for name, value in getattr(self.loss_fn, "parts", {}).items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=b)
        if self.embedding_l2 > 0:
            # L2 on the rows used in this batch only: the usual BPR regulariser, also right for sparse updates.
            reg = self.embedding_l2 * (user.pow(2).sum() + both.pow(2).sum()) / b
            self.log("train/loss_l2", reg, on_step=False, on_epoch=True, batch_size=b)
            loss = loss + reg
        self.log("train/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=b)
        return loss

    def on_train_epoch_end(self) -> None:
        if hasattr(self.scorer, "temperature"):  # e.g. TwoTower's learned softmax temperature
            self.log("train/temperature", self.scorer.temperature().detach().float())

    # ----- full-ranking evaluation, one chunk of users per batch -----
    def _start_eval(self) -> None:
        self._acc = RankingAccumulator(self.ks, self.scorer.num_items, keep_per_user=True)

    def _eval_step(self, batch: dict[str, Tensor]) -> None:
        topk = rank_batch(self.scorer, batch, max(self.ks))
        self._acc.update(
            batch["users"],
            topk,
            (batch["target_rows"], batch["target_items"]),
            batch["num_targets"],
        )

    def _end_eval(self, stage: str) -> None:
        metrics = self._acc.compute()
        self.log_dict({f"{stage}/{k}": v for k, v in metrics.items()}, sync_dist=False)
        self.per_user_results = self._acc.per_user_table()

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
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": self.scheduler_factory(optimizer=optimizer)}
