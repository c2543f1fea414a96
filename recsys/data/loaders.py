"""Tensor-resident batch iterables: batches are slices of a permutation, negatives drawn on the device.

These replace a `Dataset` + `DataLoader`: a per-example `__getitem__` and collation cost more than the
model step for recommenders (benchmarks/train_throughput.py measures it). Lightning accepts any
iterable with a length as a loader.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from recsys.csr import UserItemCSR


class NegativeSampler:
    """Draws item indices uniformly or in proportion to popularity**alpha, on the tensors' device."""

    def __init__(
        self,
        num_items: int,
        item_counts: Tensor | None = None,
        mode: str = "uniform",
        alpha: float = 1.0,
    ):
        if mode not in ("uniform", "popularity"):
            raise ValueError(f"negative_sampling must be 'uniform' or 'popularity', got {mode!r}")
        self.num_items, self.mode = num_items, mode
        self.probs = None
        if mode == "popularity":
            if item_counts is None:
                raise ValueError("popularity sampling needs item counts")
            weights = item_counts.double().clamp(min=0) ** alpha
            self.probs = (weights / weights.sum()).float()

    def item_probabilities(self) -> Tensor:
        """(I,) probability of drawing each item: what a logQ correction subtracts the log of."""
        if self.probs is None:
            return torch.full((self.num_items,), 1.0 / self.num_items, dtype=torch.float64)
        return self.probs

    def to(self, device: torch.device) -> NegativeSampler:
        if self.probs is not None:
            self.probs = self.probs.to(device)
        return self

    def sample(
        self, shape: tuple[int, ...], generator: torch.Generator, device: torch.device
    ) -> Tensor:
        n = 1
        for s in shape:
            n *= s
        if self.probs is None:
            return torch.randint(self.num_items, shape, generator=generator, device=device)
        return torch.multinomial(self.probs, n, replacement=True, generator=generator).view(shape)


class TrainBatches:
    """Shuffled minibatches of (user, item[, label]) rows plus sampled negatives.

    Shuffling and negatives use a generator seeded by (seed, epoch), so an epoch is the same whether
    the run was resumed from a checkpoint or not.

    Under DDP (`world_size` > 1) every rank draws the same permutation, pads it to a multiple of
    `world_size` by repeating its head (as `DistributedSampler` does) and takes every `world_size`-th
    row from `rank` on: ranks see disjoint rows and run the same number of steps, which DDP's
    gradient all-reduce needs. Negatives then come from a per-rank generator.

    With `steps_per_batch` = k > 1, each item is a list of k minibatches (the last one shorter),
    which the LightningModule trains as k optimizer steps: Lightning's per-batch bookkeeping is
    paid once per k steps (Keras calls this `steps_per_execution`). The minibatches, their order and
    their negatives are the same for any k.
    """

    def __init__(
        self,
        tensors: dict[str, Tensor],
        batch_size: int,
        num_negatives: int,
        sampler: NegativeSampler,
        seed: int,
        epoch_fn: Callable[[], int],
        drop_last: bool = False,
        rank: int = 0,
        world_size: int = 1,
        steps_per_batch: int = 1,
    ):
        if steps_per_batch < 1:
            raise ValueError(f"steps_per_batch must be >= 1, got {steps_per_batch}")
        self.tensors, self.batch_size, self.num_negatives = tensors, batch_size, num_negatives
        self.sampler, self.seed, self.epoch_fn, self.drop_last = sampler, seed, epoch_fn, drop_last
        self.rank, self.world_size, self.steps_per_batch = rank, world_size, steps_per_batch
        self.num_rows = int(next(iter(tensors.values())).numel())
        self.rows_per_rank = -(-self.num_rows // world_size)  # ceil: padded shard size

    @property
    def num_steps(self) -> int:
        """Optimizer steps (minibatches) per epoch on this rank."""
        full, rest = divmod(self.rows_per_rank, self.batch_size)
        return full if (self.drop_last or rest == 0) else full + 1

    def __len__(self) -> int:
        return -(-self.num_steps // self.steps_per_batch)

    def to(self, device: torch.device) -> TrainBatches:
        self.tensors = {k: v.to(device) for k, v in self.tensors.items()}
        self.sampler.to(device)
        return self

    def __iter__(self) -> Iterator[dict[str, Tensor] | list[dict[str, Tensor]]]:
        if self.steps_per_batch == 1:
            yield from self.minibatches()
            return
        group = []
        for batch in self.minibatches():
            group.append(batch)
            if len(group) == self.steps_per_batch:
                yield group
                group = []
        if group:
            yield group

    def minibatches(self) -> Iterator[dict[str, Tensor]]:
        """This epoch's minibatches one by one, whatever `steps_per_batch` is."""
        device = next(iter(self.tensors.values())).device
        gen = torch.Generator(device=device)
        gen.manual_seed(self.seed * 100_003 + self.epoch_fn())
        order = torch.randperm(self.num_rows, generator=gen, device=device)
        if self.world_size > 1:
            padded = order.repeat(-(-self.rows_per_rank * self.world_size // self.num_rows))
            order = padded[: self.rows_per_rank * self.world_size][self.rank :: self.world_size]
            gen.manual_seed((self.seed * 100_003 + self.epoch_fn()) * 1_009 + self.rank + 1)
        for b in range(self.num_steps):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size]
            batch = {k: v[idx] for k, v in self.tensors.items()}
            if self.num_negatives > 0:
                batch["negatives"] = self.sampler.sample(
                    (idx.numel(), self.num_negatives), gen, device
                )
            yield batch


class RankingBatches:
    """Chunks of users to rank against the full catalogue, with their masks and targets.

    Each batch holds `users` (B,), `exclude` and `targets` as (row in chunk, item) coordinates, and
    `num_targets` (B,). The chunk size bounds memory: B x num_items scores at a time.
    """

    def __init__(self, users: Tensor, seen: UserItemCSR, targets: UserItemCSR, chunk_users: int):
        self.users, self.seen, self.targets, self.chunk_users = (
            users,
            seen,
            targets,
            max(1, chunk_users),
        )

    def __len__(self) -> int:
        return (self.users.numel() + self.chunk_users - 1) // self.chunk_users

    def to(self, device: torch.device) -> RankingBatches:
        self.users, self.seen, self.targets = (
            self.users.to(device),
            self.seen.to(device),
            self.targets.to(device),
        )
        return self

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        for start in range(0, self.users.numel(), self.chunk_users):
            users = self.users[start : start + self.chunk_users]
            ex_rows, ex_items = self.seen.coords(users)
            t_rows, t_items = self.targets.coords(users)
            yield {
                "users": users,
                "exclude_rows": ex_rows,
                "exclude_items": ex_items,
                "target_rows": t_rows,
                "target_items": t_items,
                "num_targets": self.targets.row_lengths(users),
            }
