"""Tests of theory.predict's contract: what it accepts, what it refuses, and the shape of its output.

Its agreement with simulations (the prediction equals the run to rounding) is tested in
test_agreement.py, section 4.
"""
import numpy as np
import pytest

from linfusion import FusionNet, train
from linfusion.data import toy
from theory import Prediction, predict

DS = toy(0.5, 2.0, 1024, rng=0)


def _run(net, **kw):
    kw = {"lr": 0.04, "epochs": 50, "rng": 1, **kw}
    return train(net, DS, **kw)


def test_prediction_has_the_runs_shape_and_a_short_repr():
    run = _run(FusionNet.late((1, 1), width=8), record_every=10)
    pred = predict(run, DS.moments())               # Moments work too (no population: no eg)
    assert isinstance(pred, Prediction)
    np.testing.assert_array_equal(pred.epochs, run.epochs)
    assert [w.shape for w in pred.w_tot] == [w.shape for w in run.w_tot]
    assert pred.loss.shape == run.loss.shape and pred.eg is None
    assert pred.w_tot_all.shape == run.w_tot_all.shape
    assert predict(run, DS).eg.shape == run.eg.shape
    text = repr(pred)
    assert "\n" not in text and len(text) < 200 and text.startswith("Prediction(method='gram_map'")


@pytest.mark.parametrize("net, message", [
    (FusionNet.late((1, 1), width=8, slope=0.0), r"run.net has slope 0.0 and bias False, must be linear"),
    (FusionNet.late((1, 1), width=8, bias=True), r"run.net has slope 1.0 and bias True, must be linear"),
    (FusionNet.deep((1, 1), width=8, depth=4, fuse_depth=2), r"run.w0's block W3 is not rank one"),
])
def test_unsupported_nets_are_refused_with_what_is_supported(net, message):
    run = _run(net, init="layer" if net.depth > 2 else "entry")
    with pytest.raises(ValueError, match=message + r".*predict supports linear nets without biases"):
        predict(run, DS)


def test_deep_net_with_vector_inputs_is_refused():
    from linfusion.data import random_stats

    ds = random_stats(4, 256, rng=2)
    net = FusionNet.deep((2, 2), width=8, depth=3, fuse_depth=2)
    run = train(net, ds, lr=0.01, epochs=20, init="balanced", rng=3)
    with pytest.raises(ValueError, match=r"run.net has depth 3 with in_dims \(2, 2\), must have depth 2 or one "
                                         r"scalar input per modality"):
        predict(run, ds)


def test_other_data_or_loss_is_detected_from_the_first_record():
    run = _run(FusionNet.late((1, 1), width=8), init="entry", scale=0.3)
    other = toy(0.5, 3.0, 1024, rng=0)
    with pytest.raises(ValueError, match=r"run.loss\[0\] == .*, must equal the squared loss of run.w0 on data"):
        predict(run, other)
    with pytest.raises(ValueError, match=r"data has moments of shapes \(4, 4\) and \(1, 4\), must be \(2, 2\)"):
        from linfusion.data import random_stats
        predict(run, random_stats(4, 64, rng=0))


def test_argument_errors():
    run = _run(FusionNet.late((1, 1), width=8))
    with pytest.raises(TypeError, match=r"data is a dict, must be the run's linfusion.data.Dataset or its Moments"):
        predict(run, {"sxx": 1})
    with pytest.raises(TypeError, match=r"run is a str without .net, must be a linfusion.TrainResult"):
        predict("run", DS)
    with pytest.raises(ValueError, match=r"weight_decay == -1.0, must be >= 0"):
        predict(run, DS, weight_decay=-1.0)
    with pytest.raises(ValueError, match=r"crossing == 'sign', must be one of"):
        predict(run, DS, crossing="sign")
    deep = _run(FusionNet.deep((1, 1), width=8, depth=3, fuse_depth=2), init="balanced")
    with pytest.raises(ValueError, match=r"ogm_alpha == 1.0, must be None for a net of depth 3"):
        predict(deep, DS, ogm_alpha=1.0)
    with pytest.raises(ValueError, match=r"weight_decay == 0.1, must be 0 for a net of depth 3"):
        predict(deep, DS, weight_decay=0.1)
