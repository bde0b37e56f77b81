"""Metrics on hand-made cases where the answer is known."""
import numpy as np
import pytest

from edgepose.evaluation.metrics import angle_errors, format_summary, summarize


def test_summary_values():
    truth = np.array([[10.0, 0, 0], [45.0, 5, -5], [80.0, 0, 10]])
    pred = truth + np.array([[1.0, 2, 3], [6.0, 6, 6], [20.0, 20, 20]])
    s = summarize(pred, truth)
    assert s["yaw"] == pytest.approx(9.0) and s["mean"] == pytest.approx((9 + 28 / 3 + 29 / 3) / 3)
    assert s["auc5"] == pytest.approx(1 / 3)  # only the first sample's mean error (2) is below 5
    assert s["failure15"] == pytest.approx(1 / 3)
    assert [b["n"] for b in s["bins"].values()] == [1, 1, 1]
    assert s["bins"]["60-99"]["mean"] == pytest.approx(20.0)
    assert "60-99" in format_summary(s)


def test_errors_wrap_around():
    assert angle_errors(np.array([[179.0, 0, 0]]), np.array([[-179.0, 0, 0]]))[0, 0] == pytest.approx(2.0)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="must both be"):
        summarize(np.zeros((3, 3)), np.zeros((2, 3)))
