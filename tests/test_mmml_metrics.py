"""Metrics against values computed by hand (the MMSA definitions)."""

from __future__ import annotations

import numpy as np
import pytest

from mmml.metrics import metrics_for, mosi_metrics, sims_metrics, weighted_f1


def test_mosi_metrics_by_hand() -> None:
    preds = [1.2, -0.5, 0.4, -2.6, 2.5, 0.0]
    labels = [1.0, 0.0, -0.6, -3.0, 2.6, -1.0]
    m = mosi_metrics(preds, labels)
    # Has0: pred>=0 [T,F,T,F,T,T], label>=0 [T,T,F,F,T,F] -> agree on 0,3,4 -> 3/6
    assert m["Has0_acc_2"] == 0.5
    # Non0 drops label 0 (index 1): pred>0 [T,T,F,T,F], label>0 [T,F,F,T,F] -> agree on 4 of 5
    assert m["Non0_acc_2"] == 0.8
    # Acc7: round(clip(p,-3,3)) = [1,-0,0,-3,2,0]; labels [1,0,-1,-3,3,-1] -> agree 0,1,3 -> 3/6
    assert m["Acc7"] == 0.5
    # Acc5: clip to [-2,2] -> preds [1,-0,0,-2,2,0], labels [1,0,-1,-2,2,-1] -> agree 0,1,3,4 -> 4/6
    assert m["Acc5"] == round(4 / 6, 4)
    assert m["MAE"] == round(np.mean([0.2, 0.5, 1.0, 0.4, 0.1, 1.0]), 4)
    assert m["Corr"] == round(float(np.corrcoef(preds, labels)[0, 1]), 4)


def test_has0_f1_is_support_weighted() -> None:
    preds = [1.2, -0.5, 0.4, -2.6, 2.5, 0.0]
    labels = [1.0, 0.0, -0.6, -3.0, 2.6, -1.0]
    # label>=0 (T): idx 0,1,4 ; pred T at 0,2,4,5. class T: tp=2 fp=2 fn=1 -> F1=4/7
    # class F: idx 2,3,5 ; pred F at 1,3. tp=1 fp=1 fn=2 -> F1=2/5 ; weighted (3*4/7 + 3*2/5)/6
    assert mosi_metrics(preds, labels)["Has0_F1"] == round((4 / 7 + 2 / 5) / 2, 4)


def test_half_to_even_rounding_at_boundaries() -> None:
    # numpy rounds 0.5 -> 0, 1.5 -> 2, 2.5 -> 2, -0.5 -> -0, -1.5 -> -2
    preds = [0.5, 1.5, 2.5, -0.5, -1.5]
    labels = [0.0, 2.0, 2.0, 0.0, -2.0]
    assert mosi_metrics(preds, labels)["Acc7"] == 1.0
    assert mosi_metrics([0.5], [1.0])["Acc7"] == 0.0  # half-up rounding would say 1.0


def test_label_exactly_zero_is_positive_for_has0_and_dropped_for_non0() -> None:
    m = mosi_metrics([0.1, -0.1, 1.0], [0.0, 0.0, 1.0])
    assert m["Has0_acc_2"] == round(2 / 3, 4)  # label 0 counts as >= 0 class
    assert m["Non0_acc_2"] == 1.0  # only the third sample remains
    m = mosi_metrics([0.0, 1.0], [-1.0, 1.0])
    assert m["Non0_acc_2"] == 1.0  # prediction exactly 0 is the negative class for Non0 (> 0 vs <= 0)
    assert m["Has0_acc_2"] == 0.5  # ... and the non-negative class for Has0


def test_sims_bins_are_open_left_closed_right_and_clipped() -> None:
    # Acc2 bins (-1.01,0], (0,1.01]; 0.0 belongs to the negative bin.
    preds = [0.0, 0.05, -0.1, 0.1, 0.7, 1.8, -3.0]
    labels = [-0.2, 0.0, -0.2, 0.1, 0.8, 1.0, -1.0]
    m = sims_metrics(preds, labels)
    # Acc2 classes preds [0,1,0,1,1,1,0] labels [0,0,0,1,1,1,0] -> 6/7
    assert m["Acc2"] == round(6 / 7, 4)
    # Acc3 (split -0.1, 0.1): preds [1,1,0,1,2,2,0]; labels [0,1,0,1,2,2,0] -> 6/7
    assert m["Acc3"] == round(6 / 7, 4)
    # Acc5 (split -0.7,-0.1,0.1,0.7): preds [2,2,1,2,3,4,0]; labels [1,2,1,2,4,4,0] -> 5/7
    assert m["Acc5"] == round(5 / 7, 4)
    # MAE on clipped values: |0-(-0.2)|+0.05+0.1+0+0.1+0+0 = 0.45 / 7
    assert m["MAE"] == round(0.45 / 7, 4)


def test_weighted_f1_matches_hand_computation_with_unbalanced_classes() -> None:
    truth = np.array([1, 1, 1, 0])
    pred = np.array([1, 0, 1, 0])
    # class 1: tp2 fp0 fn1 -> 0.8 ; class 0: tp1 fp1 fn0 -> 2/3 ; weighted (3*0.8 + 1*2/3)/4
    assert weighted_f1(pred, truth) == pytest.approx((3 * 0.8 + 2 / 3) / 4)


def test_metric_dispatch_and_input_checks() -> None:
    assert metrics_for("MOSEI") is mosi_metrics
    assert metrics_for("sims") is sims_metrics
    with pytest.raises(ValueError, match="unknown dataset"):
        metrics_for("iemocap")
    with pytest.raises(ValueError, match="2 predictions for 3 labels"):
        mosi_metrics([0, 1], [0, 1, 2])
    with pytest.raises(ValueError, match="finite"):
        mosi_metrics([float("nan")], [1.0])


@pytest.mark.parametrize("constant", [0.1, 0.3, -1.7, 0.0])
def test_correlation_of_a_constant_predictor_or_constant_labels_is_nan(constant: float) -> None:
    """Seven 0.1s have a standard deviation of 1e-17, not 0: the guard must see them as constant."""
    labels = np.random.default_rng(0).uniform(-3, 3, 7)
    assert np.isnan(mosi_metrics(np.full(7, constant), labels)["Corr"])
    assert np.isnan(mosi_metrics(labels, np.full(7, constant))["Corr"])
    assert np.isnan(sims_metrics(np.full(7, constant / 3), labels / 3)["Corr"])


def test_a_tie_at_the_fifth_decimal_rounds_as_mmsa_does() -> None:
    """87 of 160 right is 0.54375: MMSA reports 0.5438 (numpy rounding of a float64)."""
    labels = np.ones(160)
    preds = np.where(np.arange(160) < 87, 1.0, -1.0)
    assert mosi_metrics(preds, labels)["Has0_acc_2"] == 0.5438


def test_weighted_f1_equals_scikit_learn_on_random_cases() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    for _ in range(200):
        n, classes = int(rng.integers(2, 60)), int(rng.integers(2, 6))
        truth, predicted = rng.integers(0, classes, n), rng.integers(0, classes, n)
        assert weighted_f1(predicted, truth) == pytest.approx(f1_score(truth, predicted, average="weighted"), abs=1e-12)
