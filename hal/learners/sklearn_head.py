"""scikit-learn classifiers as HAL learners over fixed features (``--head logreg|linearsvc|sgd``,
or any classifier with ``predict_proba`` or ``decision_function`` through ``SklearnLearner``).

- ``retrain`` is a fresh fit of a clone of the template estimator.
- A warm start (``finetune``, ``new_only``, a switched hybrid) continues from the previous fit's
  coefficients: ``warm_start=True`` where the estimator has it (LogisticRegression,
  SGDClassifier), else ``partial_fit``; an estimator with neither (LinearSVC) is a one-line
  ``HalError``. When the set of classes in the labeled set changes between fits, the previous
  coefficients are carried over class by class (a new class starts at zero).
- Probabilities: the estimator's ``predict_proba``; for an estimator with only
  ``decision_function`` (LinearSVC), the softmax of its scores (binary: of (0, score)). That keeps
  its argmax and ranks uncertainty by the margins; it is not calibrated (calibration would need
  cross-validation folds the small early labeled sets cannot supply). Columns follow the
  estimator's ``classes_``: a class missing from the labeled set gets probability 0.
- Cost: examples × the passes the estimator reports (``n_iter_``, the largest over one-vs-rest
  problems), at least 1. What a pass hides, per estimator: LogisticRegression's lbfgs iterations
  each make one or more loss-and-gradient evaluations over the data (sklearn does not report how
  many), so the count is a lower bound; LinearSVC's ``n_iter_`` counts liblinear's outer
  iterations of dual coordinate descent, one sweep per one-vs-rest problem each, so the work is
  up to classes × the count; SGDClassifier's is epochs. ``partial_fit`` is one pass.
- Checkpoints hold the fitted attributes (``coef_``, ``intercept_``, ``classes_``, ...) as
  tensors and plain values, never a pickled estimator, so ``checkpoint.pt`` loads with
  ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone

from hal.core.errors import HalError
from hal.core.learner import FitResult, Representation, no_dropout


def make_estimator(head: str, C: float | None, tol: float | None, max_iter: int | None):
    """The scikit-learn estimator of ``--head``: its own defaults, except LogisticRegression's
    ``max_iter`` 1000 (its 100 stops short on TF-IDF) and SGDClassifier's log loss (so it has
    ``predict_proba``). ``None`` settings keep the estimator's default."""
    from sklearn.linear_model import LogisticRegression, SGDClassifier
    from sklearn.svm import LinearSVC

    params: dict[str, Any] = {k: v for k, v in (("C", C), ("tol", tol), ("max_iter", max_iter))
                              if v is not None}
    if head == "logreg":
        return LogisticRegression(**{"max_iter": 1000, **params})
    if head == "linearsvc":
        return LinearSVC(**params)
    if head == "sgd":
        return SGDClassifier(**{"loss": "log_loss", **params})
    raise HalError(f"unknown scikit-learn head {head!r}: choose logreg, linearsvc or sgd")


def _softmax(scores: np.ndarray) -> np.ndarray:
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


class SklearnLearner:
    """A scikit-learn classifier (single-label) over a feature matrix whose rows are indexed like
    the corpus. ``estimator`` is the unfitted template; ``name`` names it in messages."""

    multilabel = False

    def __init__(self, features: sp.csr_matrix | np.ndarray, num_outputs: int, estimator: Any,
                 name: str | None = None) -> None:
        if not (hasattr(estimator, "predict_proba") or hasattr(estimator, "decision_function")):
            raise HalError(f"{type(estimator).__name__} has neither predict_proba nor "
                           "decision_function: HAL cannot rank examples by its uncertainty")
        self.features = features
        self._num_outputs = num_outputs
        self.template = estimator
        self.name = name or type(estimator).__name__
        self.reset()

    @property
    def num_outputs(self) -> int:
        return self._num_outputs

    def reset(self) -> None:
        """Back to the initial state: nothing fitted (the next fit is a fresh one)."""
        self.estimator: Any = None
        self.constant: int | None = None  # the one class of a labeled set with a single class
        self._warm = False

    def warm_start(self, shrink: float, perturb: float, seed: int) -> None:
        """Make the next fit continue from the current coefficients; ``HalError`` for an
        estimator that cannot. Shrink-and-perturb scales the coefficients (fresh ones are zero)."""
        params = self.template.get_params()
        if "warm_start" not in params and not hasattr(self.template, "partial_fit"):
            raise HalError(f"--head {self.name}: {type(self.template).__name__} cannot continue "
                           "from its previous coefficients (no warm_start, no partial_fit): use "
                           "--strategy retrain, or a head that can (logreg, sgd, lbfgs, mlp)")
        self._warm = True
        if (shrink, perturb) != (1.0, 0.0) and self.estimator is not None:
            self.estimator.coef_ = self.estimator.coef_ * shrink
            self.estimator.intercept_ = self.estimator.intercept_ * shrink

    def fit(self, idx: np.ndarray, y: np.ndarray, epochs: int, lr: float, seed: int,
            patience: int = 0) -> FitResult:
        """A fresh fit, or one continuing from the current coefficients after ``warm_start``
        (the loop's epoch budget and learning rate do not apply). Only the fit is timed."""
        idx, y = np.asarray(idx), np.asarray(y)
        warm, self._warm = self._warm and self.estimator is not None, False
        if len(idx) == 0:
            return FitResult(0.0, 0, 0, float("nan"))
        classes = np.unique(y)
        start = time.perf_counter()
        if len(classes) < 2:
            # No classifier can be fitted to one class: a fresh fit predicts it; a warm one keeps
            # the model it has (a new_only batch of one class).
            if not warm:
                self.estimator, self.constant = None, int(classes[0])
            return FitResult(time.perf_counter() - start, 0, 0, float("nan"))
        x = self.features[idx]
        if warm and "warm_start" in self.estimator.get_params():
            estimator = self.estimator
            _align_classes(estimator, classes)
            estimator.set_params(warm_start=True, **_random_state(estimator, seed))
            estimator.fit(x, y)
            passes = _passes(estimator)
        elif warm:
            estimator = self.estimator
            unknown = np.setdiff1d(classes, estimator.classes_)
            if len(unknown):
                raise HalError(f"--head {self.name}: partial_fit cannot learn class(es) "
                               f"{unknown.tolist()} absent from its first fit: use --strategy retrain")
            estimator.partial_fit(x, y)
            passes = 1
        else:
            estimator = clone(self.template)
            estimator.set_params(**_random_state(estimator, seed))
            estimator.fit(x, y)
            passes = _passes(estimator)
        seconds = time.perf_counter() - start
        self.estimator, self.constant = estimator, None
        cap = estimator.get_params().get("max_iter")
        converged = None if not isinstance(cap, (int, np.integer)) else bool(passes < cap)
        return FitResult(seconds, passes * len(idx), passes, float("nan"), converged=converged)

    has_dropout = False

    def predict_proba(self, idx: np.ndarray, dropout_seed: int | None = None) -> np.ndarray:
        """Class probabilities ``(n, classes)``; classes the estimator has not seen get 0."""
        if dropout_seed is not None:
            raise no_dropout(f"--head {self.name}")
        idx = np.asarray(idx)
        out = np.zeros((len(idx), self._num_outputs), dtype=np.float32)
        if self.constant is not None:
            out[:, self.constant] = 1.0
            return out
        if self.estimator is None or len(idx) == 0:
            out[:] = 1.0 / self._num_outputs  # nothing fitted yet: no preference
            return out
        x = self.features[idx]
        if hasattr(self.estimator, "predict_proba"):
            part = self.estimator.predict_proba(x)
        else:
            scores = np.asarray(self.estimator.decision_function(x), dtype=np.float64)
            if scores.ndim == 1:  # binary: the score of classes_[1] against classes_[0]
                scores = np.stack([np.zeros_like(scores), scores], axis=1)
            part = _softmax(scores)
        out[:, np.asarray(self.estimator.classes_, dtype=np.int64)] = part
        return out

    def represent(self, idx: np.ndarray) -> Representation:
        """Probabilities and the estimator's input, the feature rows (for a linear estimator the
        input of its one layer; for another estimator, what a linear softmax on these features
        would see)."""
        idx = np.asarray(idx)
        return Representation(self.predict_proba(idx), self.features[idx])

    def state_dict(self) -> dict[str, Any]:
        """The fitted attributes as tensors and plain values (no pickled estimator)."""
        state: dict[str, Any] = {"constant": -1 if self.constant is None else self.constant,
                                 "fitted": self.estimator is not None}
        if self.estimator is not None:
            for name, value in vars(self.estimator).items():
                if not name.endswith("_") or name.startswith("_"):
                    continue
                if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                    state["attr." + name] = torch.from_numpy(value.copy())
                elif isinstance(value, (bool, int, float, str, np.integer, np.floating)):
                    state["attr." + name] = value.item() if isinstance(value, np.generic) else value
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` saved onto a clone of the template."""
        self.reset()
        self.constant = None if state["constant"] < 0 else int(state["constant"])
        if not state["fitted"]:
            return
        estimator = clone(self.template)
        for key, value in state.items():
            if key.startswith("attr."):
                setattr(estimator, key[len("attr."):],
                        value.numpy().copy() if isinstance(value, torch.Tensor) else value)
        self.estimator = estimator


def _random_state(estimator: Any, seed: int) -> dict[str, int]:
    """Seed an estimator that shuffles (LinearSVC's coordinate descent, SGD) from the round."""
    return {"random_state": int(seed) % 2**31} if "random_state" in estimator.get_params() else {}


def _passes(estimator: Any) -> int:
    """Passes over the data the estimator reports: ``n_iter_`` (largest over one-vs-rest
    problems), at least 1; 1 for an estimator without it."""
    n_iter = getattr(estimator, "n_iter_", None)
    return max(1, int(np.max(n_iter))) if n_iter is not None else 1


def _align_classes(estimator: Any, classes: np.ndarray) -> None:
    """Re-index a linear estimator's coefficients to ``classes`` (the classes of the next fit's
    labeled set), so a warm start continues class by class; a new class starts at zero. Binary
    estimators keep one row (the score of classes[1] against classes[0])."""
    old = np.asarray(estimator.classes_)
    if np.array_equal(old, classes):
        return
    coef, intercept = np.asarray(estimator.coef_), np.asarray(estimator.intercept_)
    width = coef.shape[1]
    full_w = {c: np.zeros(width, dtype=coef.dtype) for c in np.union1d(old, classes).tolist()}
    full_b = dict.fromkeys(full_w, 0.0)
    if len(old) == 2 and coef.shape[0] == 1:
        full_w[int(old[1])], full_b[int(old[1])] = coef[0], float(intercept[0])
    else:
        for row, c in enumerate(old.tolist()):
            full_w[c], full_b[c] = coef[row], float(intercept[row])
    if len(classes) == 2:
        a, b = int(classes[0]), int(classes[1])
        estimator.coef_ = (full_w[b] - full_w[a])[None, :]
        estimator.intercept_ = np.array([full_b[b] - full_b[a]], dtype=intercept.dtype)
    else:
        estimator.coef_ = np.stack([full_w[int(c)] for c in classes])
        estimator.intercept_ = np.array([full_b[int(c)] for c in classes], dtype=intercept.dtype)
    estimator.classes_ = np.asarray(classes)
