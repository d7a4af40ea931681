"""Classification metrics with bootstrap confidence intervals, and the guard's AUROC."""
from __future__ import annotations

import numpy as np

from ml.labels import CLASSES


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(CLASSES),
              n_cols: int | None = None) -> np.ndarray:
    """(n, n_cols) counts; rows are true classes, columns predictions.

    n_cols > n leaves room for predictions that are no class (e.g. the guard's rejection).
    """
    m = np.zeros((n, n_cols or n), dtype=int)
    np.add.at(m, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    return m


def per_class(cm: np.ndarray, classes=CLASSES) -> dict[str, dict]:
    """Precision, recall, F1 and support for each row class of a confusion matrix."""
    out = {}
    for i, name in enumerate(classes):
        tp = cm[i, i]
        prec = tp / cm[:, i].sum() if cm[:, i].sum() else 0.0
        rec = tp / cm[i, :].sum() if cm[i, :].sum() else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[name] = {"precision": float(prec), "recall": float(rec), "f1": float(f1),
                     "support": int(cm[i, :].sum())}
    return out


def macro_f1(y_true, y_pred, n: int = len(CLASSES)) -> float:
    pc = per_class(confusion(y_true, y_pred, n, n + 1), CLASSES[:n])
    present = [v["f1"] for v in pc.values() if v["support"]]
    return float(np.mean(present)) if present else 0.0


def bootstrap_ci(y_true, y_pred, stat, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05):
    """Percentile bootstrap (1 - alpha) interval of stat(y_true, y_pred)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    vals = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(y_true), len(y_true))
        vals.append(stat(y_true[idx], y_pred[idx]))
    return [float(np.quantile(vals, alpha / 2)), float(np.quantile(vals, 1 - alpha / 2))]


def accuracy(y_true, y_pred) -> float:
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred))) if len(y_true) else 0.0


def summary(y_true, y_pred, n_boot: int = 1000) -> dict:
    """Accuracy and macro-F1 with 95% bootstrap CIs, per-class figures and the confusion matrix."""
    cm = confusion(y_true, y_pred, len(CLASSES), len(CLASSES) + 1)
    return {
        "n": int(len(y_true)),
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci95": bootstrap_ci(y_true, y_pred, accuracy, n_boot),
        "macro_f1": macro_f1(y_true, y_pred),
        "macro_f1_ci95": bootstrap_ci(y_true, y_pred, macro_f1, n_boot),
        "per_class": per_class(cm),
        "confusion_matrix": cm[:, : len(CLASSES)].tolist(),
    }


def auroc(scores_negative: np.ndarray, scores_positive: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney U)."""
    neg, pos = np.asarray(scores_negative, float), np.asarray(scores_positive, float)
    if not len(neg) or not len(pos):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def mcnemar_exact(base_correct, new_correct) -> dict:
    """Paired comparison of two classifiers on the same images: exact McNemar test.

    Args:
        base_correct, new_correct: (N,) bool, whether each classifier got each image right.

    Returns:
        ``fixed`` (base wrong, new right), ``broken`` (base right, new wrong) and ``p``,
        the two-sided exact binomial p-value of the discordant pairs (1.0 when there are none).
    """
    from math import comb

    a, b = np.asarray(base_correct, bool), np.asarray(new_correct, bool)
    fixed, broken = int(np.sum(~a & b)), int(np.sum(a & ~b))
    n, k = fixed + broken, min(fixed, broken)
    p = 1.0 if n == 0 else min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2 ** n)
    return {"fixed": fixed, "broken": broken, "p": float(p)}
