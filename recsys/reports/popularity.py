"""The popularity baseline beside every run: each user gets items ranked by training count, so a
model's gain is always read against the simplest honest ranking (`popularity/test/...`)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from recsys.data.datamodule import InteractionDataModule
from recsys.metrics.evaluate import evaluate_ranking
from recsys.models.components.popularity import PopularityScorer
from recsys.models.retrieval import RetrievalModule
from recsys.reports.run_report import RunReport


class PopularityBaseline(RunReport):
    def report(
        self, trainer: pl.Trainer, module: RetrievalModule, datamodule: InteractionDataModule
    ) -> dict[str, float]:
        data = datamodule.load()
        scorer = PopularityScorer(datamodule.item_counts, data.num_users)
        batches = datamodule.ranking_batches("test", torch.device("cpu"))
        metrics, _ = evaluate_ranking(scorer, batches, module.ks, data.num_items)
        return {f"popularity/test/{k}": v for k, v in metrics.items()}
