"""A trainable head (linear, or a one-hidden-layer MLP) in torch over fixed features.

Used by the ``tfidf`` learner (sparse TF-IDF rows) and the ``embedding`` learner (dense frozen
encoder embeddings): ``HeadLearner`` for a fixed epoch budget (``--head adamw``),
``MlpHeadLearner`` trained to a loss criterion (``--head mlp``). Same reset / fit / predict
semantics as the transformer learner.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from hal.core.device import resolve_device
from hal.core.learner import FitResult
from hal.learners.base import TorchLearner


def build_head(in_features: int, num_outputs: int, hidden_size: int, seed: int) -> nn.Module:
    """Linear head (``hidden_size`` 0) or Linear-ReLU-Linear, initialised from ``seed``."""
    torch.manual_seed(seed)
    if hidden_size == 0:
        return nn.Linear(in_features, num_outputs)
    return nn.Sequential(nn.Linear(in_features, hidden_size), nn.ReLU(),
                         nn.Linear(hidden_size, num_outputs))


class HeadLearner(TorchLearner):
    """A head over a feature matrix (CSR or dense) whose rows are indexed like the corpus."""

    def __init__(self, features: sp.csr_matrix | np.ndarray, num_outputs: int, *, multilabel: bool,
                 hidden_size: int, seed: int, batch_size: int, weight_decay: float,
                 device: str = "cpu") -> None:
        self.features = features
        self._num_outputs = num_outputs
        self.multilabel = multilabel
        self.hidden_size = hidden_size
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.device = resolve_device(device)
        self.eval_batch_size = 4096
        self.model = build_head(features.shape[1], num_outputs, hidden_size, seed).to(self.device)
        self._remember_initial_weights()

    @property
    def num_outputs(self) -> int:
        return self._num_outputs

    def fresh_state(self, seed: int) -> dict[str, torch.Tensor]:
        fresh = build_head(self.features.shape[1], self._num_outputs, self.hidden_size, seed)
        return fresh.state_dict()

    def _rows(self, idx: np.ndarray) -> torch.Tensor:
        rows = self.features[idx]
        if sp.issparse(rows):
            rows = rows.toarray()
        return torch.from_numpy(np.ascontiguousarray(rows, dtype=np.float32)).to(self.device)

    def batches(self, idx: np.ndarray, y: np.ndarray | None, batch_size: int,
                generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        if generator is None:
            # Evaluation: sparse rows stay sparse (see ``logits``); dense ones go chunk by chunk.
            for start in range(0, len(idx), batch_size):
                chunk = idx[start:start + batch_size]
                yield (self.features[chunk] if sp.issparse(self.features) else self._rows(chunk)), None
            return
        # Training sets are small (the labeled set): densify once, then slice minibatches.
        x = self._rows(idx)
        target = torch.as_tensor(y, dtype=torch.float32 if self.multilabel else torch.long,
                                 device=self.device)
        order = torch.randperm(len(idx), generator=generator).to(self.device)
        for start in range(0, len(idx), batch_size):
            take = order[start:start + batch_size]
            yield x[take], target[take]

    def logits(self, inputs: torch.Tensor | sp.csr_matrix) -> torch.Tensor:
        if not sp.issparse(inputs):
            return self.model(inputs)
        # Scoring a large pool: a sparse-dense product in the first layer is far cheaper than
        # densifying 20k-wide TF-IDF rows. Evaluation only (no autograd through scipy).
        first = self.model if isinstance(self.model, nn.Linear) else self.model[0]
        weight = first.weight.detach().cpu().numpy()
        hidden = torch.from_numpy(np.asarray(inputs @ weight.T)).to(self.device) + first.bias.detach()
        return hidden if first is self.model else self.model[1:](hidden)


class MlpHeadLearner(HeadLearner):
    """The ``mlp`` head: one hidden layer over fixed features, trained to a criterion rather than
    for a fixed budget. Every fit runs minibatch AdamW at a constant learning rate until the
    epoch's mean training loss is at or below ``loss_target``, or has not fallen by 1% for
    ``PLATEAU`` epochs, or ``max_epochs`` epochs have run. Not convex: a warm start and a retrain
    can end in different places, as for a transformer."""

    PLATEAU = 3

    def __init__(self, features: sp.csr_matrix | np.ndarray, num_outputs: int, *, multilabel: bool,
                 hidden_size: int, seed: int, batch_size: int, weight_decay: float,
                 loss_target: float, max_epochs: int, device: str = "cpu") -> None:
        super().__init__(features, num_outputs, multilabel=multilabel, hidden_size=hidden_size,
                         seed=seed, batch_size=batch_size, weight_decay=weight_decay, device=device)
        self.loss_target = loss_target
        self.max_epochs = max_epochs

    def fit(self, idx: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
            patience: int = 0) -> FitResult:
        """Train to the criterion (the loop's epoch budget and patience do not apply)."""
        return super().fit(idx, y, self.max_epochs, lr, seed, patience=self.PLATEAU)
