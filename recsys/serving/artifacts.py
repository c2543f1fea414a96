"""Build the serving modules from a scorer, save them as TorchScript or pt2, and make parity cases.

Everything here goes through the scorer contract (`num_users`, `num_items`, `user_embedding`,
`item_embedding`, `score_all_items`) and the propensity hook, never through a model class.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from recsys.csr import UserItemCSR
from recsys.metrics.evaluate import score_all_items
from recsys.metrics.ranking import topk_items
from recsys.serving.manifest import SUFFIX
from recsys.serving.modules import ItemEncoder, Propensity, Pt2Retriever, Retriever, UserEncoder
from recsys.serving.verify import Case


def propensity_module_of(scorer: nn.Module) -> nn.Module | None:
    """The propensity hook: `scorer.propensity_module()`, when the scorer has a propensity head.

    It must return an `nn.Module` whose `forward(user_idx: Tensor, item_idx: Tensor) -> Tensor`
    gives P(convert) as a (B,) float tensor with calibration and the down-sampling correction
    already applied, and that `torch.jit.script` compiles (and, for pt2, `torch.export` traces).
    """
    # getattr: the export hook is this one method, so a scorer outside recsys's PropensityScorer
    # protocol (tests/serving_support.py) can still ship a propensity artifact.
    hook = getattr(scorer, "propensity_module", None)
    return hook().eval() if callable(hook) else None


@torch.no_grad()
def embed_all(embed, n: int, chunk: int = 65536) -> Tensor:
    """(n, D) float32 rows of `embed(arange)`, a chunk at a time to bound tower activations."""
    parts = [embed(torch.arange(s, min(n, s + chunk))).float() for s in range(0, n, chunk)]
    return torch.cat(parts)


def build_modules(
    scorer: nn.Module,
    vectors: tuple[Tensor, Tensor],
    seen: UserItemCSR,
    propensity: nn.Module | None,
    pt2: bool,
) -> dict[str, nn.Module]:
    """`vectors` = (user vectors (U, D), item vectors (I, D)), from `embed_all`."""
    users, items = vectors
    retriever_cls = Pt2Retriever if pt2 else Retriever
    modules = {
        "retriever": retriever_cls(users, items, seen.indptr, seen.indices, pt2=pt2),
        "user_encoder": UserEncoder(scorer, pt2=pt2),
        "item_encoder": ItemEncoder(scorer, pt2=pt2),
    }
    if propensity is not None:
        modules["propensity"] = Propensity(propensity, scorer.num_users, scorer.num_items, pt2)
    return {name: m.eval() for name, m in modules.items()}


def _pt2_example(name: str, module: nn.Module) -> tuple[tuple, tuple]:
    """(example inputs, dynamic shapes) for torch.export: the batch dimension stays free."""
    batch = torch.export.Dim("batch", min=1)
    if name == "item_encoder":  # the one module without users
        return (torch.arange(2) % module.num_items,), ({0: batch},)
    users = torch.arange(2) % module.num_users
    if name == "retriever":
        return (users, torch.tensor(min(10, module.num_items))), ({0: batch}, None)
    if name == "user_encoder":
        return (users,), ({0: batch},)
    return (users, torch.arange(2) % module.num_items), ({0: batch}, {0: batch})


def save_module(module: nn.Module, name: str, fmt: str, folder: Path) -> Path:
    """Write `<name>.pt` (TorchScript) or `<name>.pt2` (torch.export); returns the path."""
    path = folder / f"{name}{SUFFIX[fmt]}"
    if fmt == "torchscript":
        with warnings.catch_warnings():
            # torch.jit is deprecated upstream; serving stacks still load it, hence the pt2 target too.
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.save(torch.jit.script(module), str(path))
    else:
        args, shapes = _pt2_example(name, module)
        torch.export.save(torch.export.export(module, args, dynamic_shapes=shapes), str(path))
    return path


Pairs = tuple[Tensor, Tensor]  # (users, items) of one split, as `RunDir.seen_pairs` returns


def _concat(pairs: list[Pairs]) -> Pairs:
    empty = torch.zeros(0, dtype=torch.long)
    users = torch.cat([p[0] for p in pairs]) if pairs else empty
    return users, torch.cat([p[1] for p in pairs]) if pairs else empty


def seen_items(pairs: list[Pairs], num_users: int) -> UserItemCSR:
    """Per-user items to exclude from recommendations: the union of the given splits' pairs."""
    return UserItemCSR.from_pairs(*_concat(pairs), num_users)


def popular_items(pairs: list[Pairs], num_items: int, n: int) -> Tensor:
    """Item indices by interaction count over the given splits (ties: lower index), at most n."""
    counts = torch.bincount(_concat(pairs)[1], minlength=num_items)
    order = torch.sort(counts, descending=True, stable=True).indices
    return order[: min(n, num_items)]


def sample_users(test_users: Tensor, train_users: Tensor, num_users: int, n: int, seed: int):
    """Real users to check parity on: users with test interactions (those evaluation ranks),
    sampled with a fixed seed, plus the most active user (the longest seen-item list)."""
    pool = torch.unique(test_users) if test_users.numel() else torch.arange(num_users)
    g = torch.Generator().manual_seed(seed)
    picked = pool[torch.randperm(pool.numel(), generator=g)[:n]]
    busiest = torch.bincount(train_users, minlength=num_users).argmax().view(1)
    return torch.cat([picked, busiest])


@torch.no_grad()
def expected_topk(scorer: nn.Module, seen: UserItemCSR, users: Tensor, k: int) -> list[Tensor]:
    """Eager reference along the evaluation path: [scores (B, k), item ids (B, k)]."""
    scores = score_all_items(scorer, users)  # (B, I)
    exclude = seen.coords(users)
    ids = topk_items(scores, k, exclude)
    masked = scores.clone()
    masked[exclude[0], exclude[1]] = float("-inf")
    return [masked.gather(1, ids), ids]


@torch.no_grad()
def parity_cases(
    scorer: nn.Module,
    seen: UserItemCSR,
    propensity: nn.Module | None,
    pairs: Pairs,
    users: Tensor,
    k: int,
    seed: int,
) -> dict[str, Case]:
    """Inputs and eager outputs for every artifact: a sample batch and a batch of one; `pairs`
    (test, else train (user, item) pairs) feed the propensity head real exposures."""
    k = min(k, scorer.num_items)
    one = users[:1]
    retriever = Case("retriever", exact=(False, True))
    for batch, kk in ((users, k), (one, min(10, k))):
        retriever.inputs.append([batch, kk])
        retriever.expected.append(expected_topk(scorer, seen, batch, kk))
    g = torch.Generator().manual_seed(seed)
    items = torch.randperm(scorer.num_items, generator=g)[:4096]
    cases = {
        "retriever": retriever,
        "user_encoder": Case(
            "user_encoder",
            [[users], [one]],
            [[scorer.user_embedding(b).float()] for b in (users, one)],
        ),
        "item_encoder": Case(
            "item_encoder",
            [[items], [items[:1]]],
            [[scorer.item_embedding(b).float()] for b in (items, items[:1])],
        ),
    }
    if propensity is not None:
        pick = torch.randperm(pairs[0].numel(), generator=g)[: 4 * users.numel()]
        u, i = pairs[0][pick], pairs[1][pick]
        cases["propensity"] = Case(
            "propensity",
            [[u, i], [u[:1], i[:1]]],
            [[propensity(a, b).float()] for a, b in ((u, i), (u[:1], i[:1]))],
        )
    return cases
