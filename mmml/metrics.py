"""The field's standard regression-as-classification metrics, exactly as MMSA defines them.

MOSI/MOSEI labels lie in [-3, 3]; CH-SIMS labels in [-1, 1]. Rounding is
numpy's half-to-even, F1 is support-weighted, and values are rounded to four
decimals, so numbers compare directly with published tables.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Metrics = dict[str, float]
ArrayLike = Sequence[float] | np.ndarray


def mosi_metrics(predictions: ArrayLike, labels: ArrayLike) -> Metrics:
    """Has0/Non0 binary accuracy and F1, Acc5, Acc7, MAE, Pearson correlation."""
    preds, truth = _arrays(predictions, labels)
    nonzero = truth != 0
    return _rounded(
        {
            "Has0_acc_2": _accuracy(preds >= 0, truth >= 0),
            "Has0_F1": weighted_f1(preds >= 0, truth >= 0),
            "Non0_acc_2": _accuracy(preds[nonzero] > 0, truth[nonzero] > 0),
            "Non0_F1": weighted_f1(preds[nonzero] > 0, truth[nonzero] > 0),
            "Acc5": _accuracy(_clipped_classes(preds, 2), _clipped_classes(truth, 2)),
            "Acc7": _accuracy(_clipped_classes(preds, 3), _clipped_classes(truth, 3)),
            "MAE": float(np.mean(np.abs(preds - truth))),
            "Corr": pearson(preds, truth),
        }
    )


SIMS_BINS = {
    "Acc2": [-1.01, 0.0, 1.01],
    "Acc3": [-1.01, -0.1, 0.1, 1.01],
    "Acc5": [-1.01, -0.7, -0.1, 0.1, 0.7, 1.01],
}


def sims_metrics(predictions: ArrayLike, labels: ArrayLike) -> Metrics:
    """CH-SIMS 2/3/5-class accuracy on left-open bins, weighted F1, MAE and correlation on clipped values."""
    preds, truth = _arrays(predictions, labels)
    preds, truth = np.clip(preds, -1.0, 1.0), np.clip(truth, -1.0, 1.0)
    result = {name: _accuracy(sims_classes(preds, bins), sims_classes(truth, bins)) for name, bins in SIMS_BINS.items()}
    result["F1"] = weighted_f1(sims_classes(preds, SIMS_BINS["Acc2"]), sims_classes(truth, SIMS_BINS["Acc2"]))
    result["MAE"] = float(np.mean(np.abs(preds - truth)))
    result["Corr"] = pearson(preds, truth)
    return _rounded(result)


def metrics_for(dataset: str) -> Callable[[ArrayLike, ArrayLike], Metrics]:
    """The metric set for a dataset name; custom corpora use the MOSI definitions ([-3, 3] labels)."""
    table = {"mosi": mosi_metrics, "mosei": mosei_metrics, "sims": sims_metrics, "custom": mosi_metrics}
    key = dataset.lower()
    if key not in table:
        raise ValueError(f"unknown dataset {dataset!r}; use one of {', '.join(table)}")
    return table[key]


mosei_metrics = mosi_metrics


def sims_classes(values: np.ndarray, bins: Sequence[float]) -> np.ndarray:
    """Class index of each value for intervals open on the left, closed on the right."""
    return np.digitize(values, bins[1:-1], right=True)


def weighted_f1(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Per-class F1 averaged with class support as weights (sklearn's `average='weighted'`)."""
    predicted, truth = np.asarray(predicted), np.asarray(truth)
    if truth.size == 0:
        return float("nan")
    total = 0.0
    for cls in np.unique(truth):
        tp = np.sum((predicted == cls) & (truth == cls))
        fp = np.sum((predicted == cls) & (truth != cls))
        fn = np.sum((predicted != cls) & (truth == cls))
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        total += f1 * np.sum(truth == cls)
    return float(total / truth.size)


def _clipped_classes(values: np.ndarray, bound: float) -> np.ndarray:
    return np.round(np.clip(values, -bound, bound))


def _accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(predicted == truth)) if truth.size else float("nan")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    # Undefined, not zero, for a constant predictor (or constant labels). Tested on the range, which is exactly
    # 0 for constant values, where the standard deviation of e.g. seven 0.1s is 1e-17 and corrcoef returns noise.
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _arrays(predictions: ArrayLike, labels: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    preds = np.asarray(predictions, dtype=np.float64).reshape(-1)
    truth = np.asarray(labels, dtype=np.float64).reshape(-1)
    if preds.shape != truth.shape:
        raise ValueError(f"{preds.size} predictions for {truth.size} labels")
    if not (np.isfinite(preds).all() and np.isfinite(truth).all()):
        raise ValueError("predictions and labels must be finite")
    return preds, truth


def _rounded(metrics: Metrics) -> Metrics:
    """Four decimals as MMSA rounds them: numpy's rounding of a float64 (87/160 -> 0.5438; Python's `round` on
    the float just below the tie would give 0.5437)."""
    return {name: float(np.round(np.float64(value), 4)) for name, value in metrics.items()}
