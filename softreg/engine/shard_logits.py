"""What a shard computes for the certificate (`softreg.train.certificate.certify_held`): its logits
Z = X W^T held between calls, and the sums of the terms b*(W) and the bound need, over its rows."""

from __future__ import annotations

from typing import Any

import numpy as np

from softreg.train.data import data_logits
from softreg.train.intercept import row_logsumexp

FULL_PASS_ROWS = 8192  # rows per chunk of a shard's full pass: fixed, so that every engine adds the same chunks


class ShardLogits:
    """The certificate's calls of a shard (`softreg.engine.shards.CacheShard`), whose rows are ``X``
    (n_s, n_features) and ``y`` (n_s,)."""

    X: Any
    y: Any
    cert_logits: np.ndarray | None
    cert_labels: np.ndarray

    def cert_begin(self, coef: np.ndarray, max_logits: int) -> tuple[np.ndarray, float, bool]:
        """Hold Z = X W^T (n_s, K) in float64; the shard's rows per class, sum_i ||x_i|| and whether
        the logits fit ``max_logits`` (else none are held and the run has no certificate)."""
        n_classes = coef.shape[0]
        counts = np.bincount(np.asarray(self.y), minlength=n_classes).astype(np.float64)
        self.cert_logits = None
        if len(self.y) * n_classes > max_logits:
            return counts, 0.0, False
        coef64, zeros = np.asarray(coef, dtype=np.float64), np.zeros(n_classes)
        logits, norm_sum = [], 0.0
        for start in range(0, len(self.y), FULL_PASS_ROWS):
            X = np.asarray(self.X[start:start + FULL_PASS_ROWS])
            logits.append(data_logits(coef64, zeros, X))
            X64 = X.astype(np.float64, copy=False)
            norm_sum += float(np.sqrt(np.einsum("ij,ij->i", X64, X64)).sum())
        self.cert_logits = np.concatenate(logits) if logits else np.empty((0, n_classes))
        self.cert_labels = np.asarray(self.y)
        return counts, norm_sum, True

    def cert_value(self, b: np.ndarray, present: np.ndarray) -> float:
        """sum_i logsumexp(z_i + b) over the classes ``present``."""
        return float(row_logsumexp(self._held()[:, present] + b).sum())

    def cert_terms(self, b: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sum_i p_i(b) and sum_i p_i p_i^T over the classes ``present``."""
        shifted = self._held()[:, present] + b
        proba = np.exp(shifted - row_logsumexp(shifted)[:, None])
        return proba.sum(axis=0), proba.T @ proba

    def cert_loss(self, b: np.ndarray) -> float:
        """sum_i [logsumexp(z_i + b) - z_{i,y_i} - b_{y_i}]."""
        shifted = self._held() + b
        return float((row_logsumexp(shifted) - shifted[np.arange(len(shifted)), self.cert_labels]).sum())

    def cert_gradient(self, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """sum_i (p_i - e_{y_i}) x_i^T (K, d) and sum_i (p_i - e_{y_i}) (K,), chunk by chunk."""
        logits = self._held()
        grad, residual = np.zeros((logits.shape[1], self.X.shape[1])), np.zeros(logits.shape[1])
        for start in range(0, len(self.y), FULL_PASS_ROWS):
            shifted = logits[start:start + FULL_PASS_ROWS] + b
            proba = np.exp(shifted - row_logsumexp(shifted)[:, None])
            proba[np.arange(len(proba)), self.cert_labels[start:start + FULL_PASS_ROWS]] -= 1.0
            grad += np.asarray(np.asarray(self.X[start:start + FULL_PASS_ROWS]).T @ proba, dtype=np.float64).T
            residual += proba.sum(axis=0)
        return grad, residual

    def _held(self) -> np.ndarray:
        if self.cert_logits is None:
            raise ValueError("cert_begin first (or the logits did not fit)")
        return self.cert_logits
