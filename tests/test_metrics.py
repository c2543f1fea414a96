"""Full-ranking metrics against a plain per-user reference implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from recsys.csr import UserItemCSR
from recsys.data.loaders import RankingBatches
from recsys.metrics.evaluate import evaluate_ranking


def reference_metrics(scores, seen, targets, ks):
    """One user at a time, numpy only: stable sort breaks ties by lower item index."""
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("recall", "ndcg", "hr", "mrr", "precision")}
    n_users = 0
    for u in range(scores.shape[0]):
        if not targets[u]:
            continue
        n_users += 1
        s = scores[u].astype(np.float64).copy()
        s[list(seen[u])] = -np.inf
        ranking = np.argsort(-s, kind="stable")
        for k in ks:
            top = ranking[:k]
            rel = [1.0 if i in targets[u] else 0.0 for i in top]
            dcg = sum(r / math.log2(pos + 2) for pos, r in enumerate(rel))
            idcg = sum(1 / math.log2(pos + 2) for pos in range(min(k, len(targets[u]))))
            first = next((pos + 1 for pos, r in enumerate(rel) if r), None)
            sums[f"recall@{k}"] += sum(rel) / len(targets[u])
            sums[f"ndcg@{k}"] += dcg / idcg
            sums[f"hr@{k}"] += float(sum(rel) > 0)
            sums[f"mrr@{k}"] += 1.0 / first if first else 0.0
            sums[f"precision@{k}"] += sum(rel) / k
    return {name: v / n_users for name, v in sums.items()}


class FixedScores(torch.nn.Module):
    """A scorer on the contract whose scores are a given matrix."""

    def __init__(self, scores: torch.Tensor):
        super().__init__()
        self.scores, self.num_items = scores, scores.shape[1]

    def score_all_items(self, users):
        return self.scores[users]


def random_case(seed, n_users=57, n_items=40, quantize=True):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(n_users, n_items)).astype(np.float32)
    if quantize:  # many exact ties
        scores = np.round(scores * 2) / 2
    seen = [
        set(rng.choice(n_items, rng.integers(0, 10), replace=False).tolist())
        for _ in range(n_users)
    ]
    targets = []
    for u in range(n_users):
        kind = u % 4
        if kind == 0:  # fewer test items than K
            t = set(rng.choice(n_items, 2, replace=False).tolist()) - seen[u]
        elif kind == 1 and seen[u]:  # every test item is also seen: masked, can never be hit
            t = set(list(seen[u])[:3])
        elif kind == 2:
            t = set()
        else:
            t = set(rng.choice(n_items, rng.integers(1, 25), replace=False).tolist())
        targets.append(t)
    return scores, seen, targets


def to_csr(sets, n_users):
    users = torch.tensor([u for u, s in enumerate(sets) for _ in s], dtype=torch.int64)
    items = torch.tensor([i for s in sets for i in sorted(s)], dtype=torch.int64)
    return UserItemCSR.from_pairs(users, items, n_users)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_metrics_match_reference_with_ties_and_masking(seed, chunk):
    scores, seen, targets = random_case(seed)
    n_users, n_items = scores.shape
    target_csr = to_csr(targets, n_users)
    users = torch.nonzero(target_csr.row_lengths() > 0).view(-1)
    batches = RankingBatches(users, to_csr(seen, n_users), target_csr, chunk)
    ks = [5, 10, 20]
    got, per_user = evaluate_ranking(
        FixedScores(torch.from_numpy(scores)), batches, ks, n_items, keep_per_user=True
    )
    want = reference_metrics(scores, seen, targets, ks)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name
    assert per_user["user_idx"].tolist() == users.tolist()


def test_ties_broken_by_lower_item_index():
    scorer = FixedScores(torch.zeros(1, 6))
    targets = to_csr([{0}], 1)
    batches = RankingBatches(torch.tensor([0]), to_csr([set()], 1), targets, 1)
    got, _ = evaluate_ranking(scorer, batches, [1], 6)
    assert got["hr@1"] == 1.0  # all scores equal: item 0 ranks first


def test_coverage_counts_distinct_recommended_items():
    scores = torch.tensor([[3.0, 2.0, 1.0, 0.0], [0.0, 1.0, 2.0, 3.0]])
    targets = to_csr([{0}, {3}], 2)
    batches = RankingBatches(torch.tensor([0, 1]), to_csr([set(), set()], 2), targets, 2)
    got, _ = evaluate_ranking(FixedScores(scores), batches, [1], 4)
    assert got["coverage@1"] == pytest.approx(0.5)
    assert got["recall@1"] == pytest.approx(1.0)


def test_negative_zero_ties_with_zero():
    """-0.0 == 0.0 for the reference; the lower index must win, as for any other tie."""
    scorer = FixedScores(torch.tensor([[-0.0, 0.0, -0.0, 0.0]]))
    batches = RankingBatches(torch.tensor([0]), to_csr([set()], 1), to_csr([{0}], 1), 1)
    got, _ = evaluate_ranking(scorer, batches, [1], 4)
    assert got["hr@1"] == 1.0


def test_evaluation_leaves_a_scorers_stored_scores_alone():
    """Masking writes into fresh score tensors only: popularity's counts (a view) stay intact."""
    from recsys.models.components.popularity import PopularityScorer

    counts = torch.tensor([5.0, 3.0, 9.0, 1.0])
    scorer = PopularityScorer(counts)
    users = torch.tensor([0, 1])
    seen = UserItemCSR.from_pairs(torch.tensor([0, 1]), torch.tensor([2, 0]), 2)
    targets = UserItemCSR.from_pairs(torch.tensor([0, 1]), torch.tensor([0, 2]), 2)
    metrics, _ = evaluate_ranking(scorer, RankingBatches(users, seen, targets, 2), [1], 4)
    assert torch.equal(scorer.counts.view(-1), counts)
    assert metrics["recall@1"] == 1.0  # item 2 masked for user 0, item 0 masked for user 1
