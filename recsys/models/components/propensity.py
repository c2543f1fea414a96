"""Sigmoid propensity head: calibrated P(convert | user, item) on top of any scorer.

`WithPropensityHead(base)` keeps the scorer contract (`user_embedding`, `item_embedding`, `score`,
`score_all_items` are the base's, so ranking, evaluation and export are unchanged) and adds
`propensity_logit` / `propensity`: an MLP over (user embedding, item embedding, their product,
optional context), the wide-and-deep style of pointwise CTR models (Cheng et al., 2016).

Prediction = sigmoid(a * (logit + log w) + b), then an optional isotonic map:
- `+ log w` undoes down-sampling of label-0 training rows at keep rate w, i.e.
  p' = p / (p + (1 - p) / w) (He et al., 2014, "Practical lessons from predicting clicks on ads");
- (a, b) is Platt scaling (Platt, 1999); temperature scaling is b = 0, a = 1 / T (Guo et al., 2017);
- isotonic (Zadrozny & Elkan, 2002) is a piecewise-linear map through fitted knots.
All of it lives in buffers, so checkpoints and exported modules carry the calibration.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from recsys.models.contracts import Scorer, ScorerInputs


class WithPropensityHead(nn.Module):
    """A scorer plus a propensity MLP on its user and item representations.

    base: any scorer on the contract; its embeddings feed the head (and get the head's gradient
        unless `detach_base`, which trains the head on frozen representations).
    hidden: widths of the MLP's hidden layers.
    context_dim: width of optional per-exposure context features (0 = none).
    """

    def __init__(
        self,
        base: Scorer,
        hidden: tuple[int, ...] | list[int] = (64,),
        dropout: float = 0.0,
        context_dim: int = 0,
        detach_base: bool = False,
    ):
        super().__init__()
        self.base = base
        self.num_users: int = int(base.num_users)
        self.num_items: int = int(base.num_items)
        self.context_dim, self.detach_base = int(context_dim), bool(detach_base)
        with torch.no_grad():
            probe = torch.zeros(1, dtype=torch.long)
            width = base.user_embedding(probe).shape[-1]
            if base.item_embedding(probe).shape[-1] != width:
                raise ValueError("the propensity head needs user and item embeddings of one width")
        layers: list[nn.Module] = []
        d_in = 3 * width + self.context_dim
        for h in hidden:
            layers += [nn.Linear(d_in, int(h)), nn.ReLU(), nn.Dropout(dropout)]
            d_in = int(h)
        layers.append(nn.Linear(d_in, 1))
        self.mlp = nn.Sequential(*layers)
        # Calibration and down-sampling correction: identity until fitted (see set_calibration).
        self.register_buffer("log_keep_rate", torch.zeros(()))  # log w
        self.register_buffer("platt_a", torch.ones(()))
        self.register_buffer("platt_b", torch.zeros(()))
        self.register_buffer("iso_x", torch.zeros(0))  # (K,) increasing probabilities
        self.register_buffer("iso_y", torch.zeros(0))  # (K,) calibrated values at iso_x

    @classmethod
    def from_inputs(cls, inputs: ScorerInputs, base: Scorer, **config) -> WithPropensityHead:
        """The base scorer is built first from the same inputs (`build_scorer`) and passed in."""
        return cls(base, **config)

    def training_scalars(self) -> dict[str, Tensor]:
        return self.base.training_scalars()

    # ----- scorer contract: the base's -----
    @torch.jit.export
    def user_embedding(self, users: Tensor) -> Tensor:
        return self.base.user_embedding(users)

    @torch.jit.export
    def item_embedding(self, items: Tensor) -> Tensor:
        return self.base.item_embedding(items)

    @torch.jit.export
    def score(self, users: Tensor, items: Tensor) -> Tensor:
        return self.base.score(users, items)

    @torch.jit.export
    def score_all_items(self, users: Tensor) -> Tensor:
        return self.base.score_all_items(users)

    # ----- propensity -----
    def logit_from_embeddings(
        self, user: Tensor, item: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Raw head logit (B,) from aligned embeddings (B, D): what training's BCE sees."""
        if self.detach_base:
            user, item = user.detach(), item.detach()
        parts = [user, item, user * item]
        if context is not None:
            parts.append(context.to(user.dtype))
        return self.mlp(torch.cat(parts, dim=-1)).squeeze(-1)

    @torch.jit.export
    def propensity_logit(
        self, users: Tensor, items: Tensor, context: Tensor | None = None
    ) -> Tensor:
        """Raw (uncorrected, uncalibrated) logit (B,) for aligned user and item indices."""
        return self.logit_from_embeddings(
            self.base.user_embedding(users), self.base.item_embedding(items), context
        )

    def calibrate_logit(
        self, logit: Tensor, corrected: bool = True, calibrated: bool = True
    ) -> Tensor:
        """Probability from a raw logit: down-sampling correction, then Platt, then isotonic."""
        z = logit.float()
        if corrected:
            z = z + self.log_keep_rate
        if calibrated:
            z = self.platt_a * z + self.platt_b
        p = torch.sigmoid(z)
        if calibrated and self.iso_x.numel() > 0:
            p = piecewise_linear(p, self.iso_x, self.iso_y)
        return p

    @torch.jit.export
    def propensity(self, users: Tensor, items: Tensor, context: Tensor | None = None) -> Tensor:
        """Calibrated P(convert | user, item) (B,), corrected to the original base rate."""
        return self.calibrate_logit(self.propensity_logit(users, items, context))

    @torch.jit.export
    def propensity_all_users(self, item: int, chunk: int = 65536) -> Tensor:
        """(num_users,) calibrated probabilities of every user for one item, chunk by chunk."""
        out: list[Tensor] = []
        device = self.platt_a.device
        for start in range(0, self.num_users, chunk):
            users = torch.arange(start, min(start + chunk, self.num_users), device=device)
            out.append(self.propensity(users, torch.full_like(users, item), None))
        return torch.cat(out)

    # ----- fitted state -----
    @torch.jit.unused
    def set_keep_rate(self, keep_rate: float) -> None:
        """Record that label-0 training rows were kept with probability `keep_rate` (w)."""
        if not 0 < keep_rate <= 1:
            raise ValueError(f"negative keep rate must be in (0, 1], got {keep_rate}")
        self.log_keep_rate.fill_(math.log(keep_rate))

    @torch.jit.unused
    def set_calibration(
        self,
        a: float = 1.0,
        b: float = 0.0,
        iso_x: Tensor | None = None,
        iso_y: Tensor | None = None,
    ) -> None:
        device = self.platt_a.device
        self.platt_a.fill_(a)
        self.platt_b.fill_(b)
        self.iso_x = (iso_x if iso_x is not None else torch.zeros(0)).float().to(device)
        self.iso_y = (iso_y if iso_y is not None else torch.zeros(0)).float().to(device)

    @torch.jit.unused
    def calibration_state(self) -> dict[str, Tensor]:
        state = {
            "log_keep_rate": self.log_keep_rate,
            "platt_a": self.platt_a,
            "platt_b": self.platt_b,
            "iso_x": self.iso_x,
            "iso_y": self.iso_y,
        }
        return {name: value.detach().cpu().clone() for name, value in state.items()}

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # The isotonic knots have a fitted length: resize before the strict shape check.
        for name in ("iso_x", "iso_y"):
            if prefix + name in state_dict:
                setattr(self, name, torch.empty_like(state_dict[prefix + name]))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def propensity_module(self) -> nn.Module:
        """The serving module for export: `forward(user_idx, item_idx) -> probability (B,)`."""
        return PropensityModel(self)


def piecewise_linear(x: Tensor, knots_x: Tensor, knots_y: Tensor) -> Tensor:
    """Linear interpolation through (knots_x, knots_y), constant outside; vectorised with searchsorted."""
    if knots_x.numel() == 1:
        return knots_y.expand_as(x).clone()
    x = x.contiguous()
    hi = torch.searchsorted(knots_x, x).clamp(1, knots_x.numel() - 1)
    lo = hi - 1
    x0, x1, y0, y1 = knots_x[lo], knots_x[hi], knots_y[lo], knots_y[hi]
    t = ((x - x0) / (x1 - x0).clamp(min=1e-12)).clamp(0.0, 1.0)
    return y0 + t * (y1 - y0)


class PropensityModel(nn.Module):
    """Serving module: calibrated probability for (user index, item index) pairs; scriptable."""

    def __init__(self, scorer: WithPropensityHead):
        super().__init__()
        self.scorer = scorer

    def forward(self, user_idx: Tensor, item_idx: Tensor) -> Tensor:
        return self.scorer.propensity(user_idx, item_idx, None)
