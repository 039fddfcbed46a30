"""Row geometry the representation-based query strategies share: normalised rows, inner
products and squared distances between row sets (dense or CSR alike), and BADGE's gradient
embedding kept factorised.

Everything is computed in float64: the strategies pick by comparing distances, and float32
rounding would turn near-ties into coin flips that differ between implementations.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

Rows = np.ndarray | sp.csr_matrix
CHUNK = 2048  # rows of a distance block: 2048 x 10,000 float64 is 160 MB at most
FEW = 256  # rows of a block that ``inner`` makes dense


def as_float64(x: Rows) -> Rows:
    """``x`` as float64 (CSR stays CSR)."""
    return x.astype(np.float64).tocsr() if sp.issparse(x) else np.asarray(x, dtype=np.float64)


def unit_rows(x: Rows) -> Rows:
    """Rows scaled to unit L2 norm (zero rows stay zero), float64."""
    from sklearn.preprocessing import normalize  # imported on use: configs load this module

    return normalize(as_float64(x), axis=1)


def sq_norms(x: Rows) -> np.ndarray:
    """Squared L2 norm of every row."""
    if sp.issparse(x):
        return np.asarray(x.multiply(x).sum(axis=1)).ravel()
    return np.einsum("ij,ij->i", x, x)


def inner(x: Rows, y: Rows) -> np.ndarray:
    """Dense ``x @ y.T``. A side of few rows (a pick, a seed) is made dense first, and the longer
    side goes on the left: a matrix times a dense block is many times faster than a product of two
    sparse matrices, or than a short row block times a long transposed one."""
    if sp.issparse(y) and y.shape[0] <= FEW:
        y = y.toarray()
    if sp.issparse(x) and x.shape[0] <= FEW:
        x = x.toarray()
    if x.shape[0] < y.shape[0] and (sp.issparse(y) or not sp.issparse(x)):
        out = (y @ x.T).T  # the long side on the left: one matrix times a block
    else:
        out = x @ y.T
    return out.toarray() if sp.issparse(out) else np.asarray(out)


def sq_distances(x: Rows, y: Rows, x_sq: np.ndarray | None = None,
                 y_sq: np.ndarray | None = None) -> np.ndarray:
    """Squared Euclidean distances ``(len(x), len(y))``, clipped at 0 as scikit-learn does."""
    x_sq = sq_norms(x) if x_sq is None else x_sq
    y_sq = sq_norms(y) if y_sq is None else y_sq
    d = x_sq[:, None] + y_sq[None, :] - 2.0 * inner(x, y)
    return np.maximum(d, 0.0, out=d)


def min_sq_distances(x: Rows, y: Rows, x_sq: np.ndarray | None = None) -> np.ndarray:
    """For every row of ``x``, the squared distance to its nearest row of ``y`` (inf without
    rows in ``y``), in blocks so that memory stays bounded. ``x_sq``: ``sq_norms(x)`` if known."""
    if y.shape[0] == 0:
        return np.full(x.shape[0], np.inf)
    x_sq, y_sq = sq_norms(x) if x_sq is None else x_sq, sq_norms(y)
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], CHUNK):
        block = slice(start, start + CHUNK)
        out[block] = sq_distances(x[block], y, x_sq[block], y_sq).min(axis=1)
    return out


def gradient_scale(probs: np.ndarray, multilabel: bool) -> np.ndarray:
    """∂loss/∂logits at the model's own prediction (BADGE's hypothesised label): softmax
    cross-entropy with the argmax class, p − e_ŷ; for multi-label data, per-label binary
    cross-entropy with the labels p ≥ 0.5, p − 1[p ≥ 0.5]. The loss gradient with respect to the
    output layer's weights is the outer product of this with the layer's input."""
    probs = np.asarray(probs, dtype=np.float64)
    if multilabel:
        return probs - (probs >= 0.5)
    scale = probs.copy()
    scale[np.arange(len(probs)), probs.argmax(axis=1)] -= 1.0
    return scale


class GradientEmbedding:
    """BADGE's gradient embeddings g_i = a_i ⊗ h_i (``a``: ``gradient_scale``, ``h``: the output
    layer's input), never materialised: ‖g_i‖² = ‖a_i‖²‖h_i‖² and ⟨g_i, g_j⟩ = ⟨a_i, a_j⟩⟨h_i, h_j⟩.
    77 classes × 20,000 TF-IDF columns would be 1.5 million dense values per example; the
    factorised form costs one inner product of each factor."""

    def __init__(self, scale: np.ndarray, features: Rows) -> None:
        self.scale = np.asarray(scale, dtype=np.float64)
        self.features = as_float64(features)
        self.sq_norms = sq_norms(self.scale) * sq_norms(self.features)

    def __len__(self) -> int:
        return len(self.scale)

    def inner_rows(self, rows: np.ndarray) -> np.ndarray:
        """⟨g_r, g_j⟩ for every r in ``rows`` and every j: ``(len(rows), len(self))``."""
        return inner(self.scale[rows], self.scale) * inner(self.features[rows], self.features)

    def sq_distances(self, rows: np.ndarray) -> np.ndarray:
        """Squared distances from ``rows`` to every point, clipped at 0 (a point to itself)."""
        d = -2.0 * self.inner_rows(rows)
        d += self.sq_norms[rows, None]
        d += self.sq_norms[None, :]
        return np.maximum(d, 0.0, out=d)

    def materialize(self) -> np.ndarray:
        """The embeddings as a dense ``(n, classes × features)`` matrix, class-major (tests)."""
        h = self.features.toarray() if sp.issparse(self.features) else self.features
        return (self.scale[:, :, None] * h[:, None, :]).reshape(len(self), -1)
