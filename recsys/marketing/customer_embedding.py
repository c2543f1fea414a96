"""A trained retrieval run's user vectors as customer features: what the customer's taste looks
like, beside how often and how recently they buy.

The vectors are static: a run trained on events after a cut-off would leak them into that
cut-off's features. Train the retrieval run on the log up to the first training cut-off (e.g.
`data.split` by time), or accept the leak knowingly; the data report records which run was used.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from recsys.run_dir import RunDir


@dataclass
class UserEmbeddings:
    run_dir: str | None = None  # a retrieval run whose users are the customers; None = no vectors

    def __call__(self) -> pd.DataFrame | None:
        """Columns emb_0..emb_{d-1}, indexed by customer id (str); None without a run."""
        if self.run_dir is None:
            return None
        run = RunDir(self.run_dir)
        scorer, _ = run.load_scorer()
        users = [str(u) for u in run.vocabulary("users")]
        with torch.no_grad():
            vectors = scorer.user_embedding(torch.arange(len(users))).float().numpy()
        columns = [f"emb_{i}" for i in range(vectors.shape[1])]
        return pd.DataFrame(vectors, index=pd.Index(users, name="customer"), columns=columns)
