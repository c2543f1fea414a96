"""In-batch softmax loss, forward + backward: recsys's fused version against the textbook autograd one.

    python -m benchmarks.loss_speed --threads 1

Textbook (what TFRS / TorchRec examples write): logits = U @ V.T + logQ bias (B, C), accidental hits
masked with `masked_fill`, `F.cross_entropy`, autograd for the gradients. Fused
(`recsys.models.softmax_xent.shared_candidate_xent`): the gradient is formed on the logits in the
forward, hits are found from a sort on CPU, and the (B, C) buffers are kept between steps. Same
inputs, both in one process, alternating rounds (this VM drifts by 10-20%), medians reported; unit
vectors / temperature 0.05 and a popularity logQ, so logits span what a trained two-tower's do.
On CUDA also the peak memory of a step. Saved to benchmarks/results/loss_speed_<device>.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import time
from datetime import date

import torch
import torch.nn.functional as F

from benchmarks.common import results_path
from recsys.models.softmax_xent import accidental_hit_mask, shared_candidate_xent
from recsys.perf.scratch import ScratchBuffer


def textbook(user, candidates, bias, pos_items, cand_items, scratch):
    logits = user @ candidates.T + bias
    logits = logits.masked_fill(accidental_hit_mask(pos_items, cand_items), -math.inf)
    return F.cross_entropy(logits, torch.arange(user.shape[0], device=user.device))


def fused(user, candidates, bias, pos_items, cand_items, scratch):
    return shared_candidate_xent(user, candidates, bias, pos_items, cand_items, True, scratch)[0]


LOSSES = {"textbook": textbook, "fused": fused}


def make_batches(batch: int, candidates: int, dim: int, device: torch.device, count: int = 8):
    """Items drawn from a Zipf-like popularity (repeats in a batch, as in real logs)."""
    g = torch.Generator().manual_seed(0)
    num_items = 50_000
    popularity = 1.0 / torch.arange(1, num_items + 1).double()
    probs = popularity / popularity.sum()
    out = []
    for _ in range(count):
        items = torch.multinomial(probs, candidates, replacement=True, generator=g)
        user = F.normalize(torch.randn(batch, dim, generator=g), dim=1) / 0.05
        cands = F.normalize(torch.randn(candidates, dim, generator=g), dim=1)
        bias = -torch.log(batch * probs[items]).float()
        tensors = (user, cands, bias, items[:batch], items)
        out.append(tuple(t.to(device) for t in tensors))
    return out


def ms_per_step(loss_fn, batches, device: torch.device, scratch) -> float:
    start = time.perf_counter()
    for user, cands, bias, pos_items, cand_items in batches:
        user, cands = user.clone().requires_grad_(), cands.clone().requires_grad_()
        loss_fn(user, cands, bias, pos_items, cand_items, scratch).backward()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / len(batches) * 1e3


def peak_mib(loss_fn, batches, device: torch.device) -> float | None:
    """CUDA memory a step adds at its peak over the inputs (the fused loss's buffers included)."""
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    ms_per_step(loss_fn, batches[:1], device, (ScratchBuffer(), ScratchBuffer()))
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def measure(batch: int, candidates: int, dim: int, device: torch.device, rounds: int) -> dict:
    batches = make_batches(batch, candidates, dim, device)
    scratch = (ScratchBuffer(), ScratchBuffer())  # as InBatchSoftmaxLoss keeps them
    times: dict[str, list[float]] = {name: [] for name in LOSSES}
    for loss_fn in LOSSES.values():  # warm-up
        ms_per_step(loss_fn, batches, device, scratch)
    for r in range(rounds):
        for name in LOSSES if r % 2 == 0 else reversed(LOSSES):
            times[name].append(ms_per_step(LOSSES[name], batches, device, scratch))
    row = {"batch": batch, "candidates": candidates, "dim": dim}
    row.update({f"{name}_ms": statistics.median(v) for name, v in times.items()})
    row["speedup"] = row["textbook_ms"] / row["fused_ms"]
    for name, loss_fn in LOSSES.items():
        peak = peak_mib(loss_fn, batches, device)
        if peak is not None:
            row[f"{name}_peak_mib"] = peak
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--sizes", nargs="+", default=["1024x1024", "1024x2048", "4096x4096"],
                        help="BATCHxCANDIDATES (candidates > batch: mixed negatives)")  # fmt: skip
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for size in args.sizes:
        batch, candidates = (int(x) for x in size.split("x"))
        row = measure(batch, candidates, args.dim, device, args.rounds)
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}))
        rows.append(row)
    machine = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor()
    out = {"date": str(date.today()), "machine": machine or platform.machine(),
           "threads": args.threads, "torch": torch.__version__, "rows": rows}  # fmt: skip
    results_path(f"loss_speed_{device.type}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
