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
                 device: str = "cpu", dropout: float = 0.0) -> None:
        self.features = features
        self.dropout = dropout if hidden_size else 0.0
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

    @property
    def has_dropout(self) -> bool:
        """Dropout on the hidden layer (``--dropout``); a linear head has none."""
        return self.dropout > 0

    def _hidden(self, inputs: torch.Tensor | sp.csr_matrix) -> torch.Tensor | sp.csr_matrix:
        """The output layer's input: the features themselves for a linear head (sparse rows stay
        sparse), the hidden activations of an MLP."""
        if isinstance(self.model, nn.Linear):
            return inputs
        first = self.model[0]
        if sp.issparse(inputs):
            # Scoring a large pool: a sparse-dense product in the first layer is far cheaper than
            # densifying 20k-wide TF-IDF rows. Evaluation only (no autograd through scipy).
            weight = first.weight.detach().cpu().numpy()
            pre = torch.from_numpy(np.asarray(inputs @ weight.T)).to(self.device) + first.bias.detach()
        else:
            pre = first(inputs)
        return self.model[1](pre)

    def _output(self, hidden: torch.Tensor | sp.csr_matrix, dropout: bool) -> torch.Tensor:
        """Logits from the output layer's input, with dropout on the hidden layer when asked."""
        if isinstance(self.model, nn.Linear):
            if sp.issparse(hidden):
                weight = self.model.weight.detach().cpu().numpy()
                return torch.from_numpy(np.asarray(hidden @ weight.T)).to(self.device) + self.model.bias.detach()
            return self.model(hidden)
        return self.model[2](nn.functional.dropout(hidden, self.dropout, training=dropout and self.dropout > 0))

    def logits(self, inputs: torch.Tensor | sp.csr_matrix) -> torch.Tensor:
        return self._output(self._hidden(inputs), dropout=self.model.training)

    def describe(self) -> str:
        return f"the {'linear' if isinstance(self.model, nn.Linear) else 'MLP'} head without --dropout"

    def forward_parts(self, inputs: torch.Tensor | sp.csr_matrix, embed: bool, sampling: bool):
        """Logits and the output layer's input (CSR rows for a linear head over TF-IDF); with
        ``sampling``, dropout on the hidden layer."""
        hidden = self._hidden(inputs)
        logits = self._output(hidden, dropout=sampling)
        if not embed:
            return logits, None
        return logits, hidden if sp.issparse(hidden) else hidden.detach().float().cpu().numpy()


class MlpHeadLearner(HeadLearner):
    """The ``mlp`` head: one hidden layer over fixed features, trained to a criterion rather than
    for a fixed budget. Every fit runs minibatch AdamW at a constant learning rate until the
    epoch's mean training loss is at or below ``loss_target``, or has not fallen by 1% for
    ``PLATEAU`` epochs, or ``max_epochs`` epochs have run. Not convex: a warm start and a retrain
    can end in different places, as for a transformer."""

    PLATEAU = 3

    def __init__(self, features: sp.csr_matrix | np.ndarray, num_outputs: int, *, multilabel: bool,
                 hidden_size: int, seed: int, batch_size: int, weight_decay: float,
                 loss_target: float, max_epochs: int, device: str = "cpu", dropout: float = 0.0) -> None:
        super().__init__(features, num_outputs, multilabel=multilabel, hidden_size=hidden_size,
                         seed=seed, batch_size=batch_size, weight_decay=weight_decay, device=device,
                         dropout=dropout)
        self.loss_target = loss_target
        self.max_epochs = max_epochs

    def fit(self, idx: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
            patience: int = 0) -> FitResult:
        """Train to the criterion (the loop's epoch budget and patience do not apply)."""
        return super().fit(idx, y, self.max_epochs, lr, seed, patience=self.PLATEAU)
