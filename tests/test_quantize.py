"""Float training and post-training quantization to IntMLP."""

import numpy as np
import pytest

from hwmlp import HwmlpError
from hwmlp.data import load_embedded, prepare
from hwmlp.quantize import quantize_mlp
from hwmlp.train import FloatMLP, train_float


@pytest.fixture(scope="module")
def iris():
    split = prepare(load_embedded("iris"), 4, 0.3, seed=0)
    fmlp = train_float(split.X_train / 15, split.y_train, [3], split.n_classes, seed=0, epochs=600, device="cpu")
    return split, fmlp


def test_training_is_deterministic_and_learns(iris):
    split, fmlp = iris
    again = train_float(split.X_train / 15, split.y_train, [3], split.n_classes, seed=0, epochs=600, device="cpu")
    assert all(np.array_equal(a, b) for a, b in zip(fmlp.weights, again.weights))
    assert fmlp.accuracy(split.X_test / 15, split.y_test) >= 0.9


def test_fixed_point_weights_lie_on_the_grid_and_keep_accuracy(iris):
    split, fmlp = iris
    q = quantize_mlp(fmlp, 4, 8, "fixed")
    for layer in q.layers:
        assert np.abs(layer.weights).max() == 127
    assert q.layers[-1].activation.kind == "none"
    f_acc = fmlp.accuracy(split.X_test / 15, split.y_test)
    assert q.accuracy(split.X_test, split.y_test) >= f_acc - 0.03


def test_power_of_two_weights_are_zero_or_signed_powers(iris):
    _, fmlp = iris
    q = quantize_mlp(fmlp, 4, 6, "pow2")
    for layer in q.layers:
        mag = np.abs(layer.weights[layer.weights != 0])
        assert ((mag & (mag - 1)) == 0).all() and mag.max() <= 16


def test_integer_sums_track_scaled_float_sums():
    # One linear layer with a weight exactly on the grid: integer sum == scale * float sum.
    f = FloatMLP([np.array([[0.5, -1.0]])], [np.array([0.25])])
    q = quantize_mlp(f, 4, 8, "fixed")
    assert q.layers[0].weights.tolist() == [[64, -127]]  # scale a = 127
    assert q.layers[0].biases.tolist() == [round(0.25 * 127 * 15)]


def test_layer_reading_only_dead_neurons_quantizes_to_a_constant():
    # Hidden neuron always 0 (ReLU of a negative bias): weight decay leaves the output
    # layer's weights near 1e-30, which must not blow the scale up to overflow.
    f = FloatMLP(
        [np.array([[0.1, 0.2]]), np.array([[1e-30], [-1e-31]])],
        [np.array([-5.0]), np.array([0.5, -0.25])],
    )
    q = quantize_mlp(f, 4, 8, "fixed")
    assert q.layers[1].weights.tolist() == [[0], [0]]
    X = np.array([[a, b] for a in range(16) for b in range(16)])
    assert (q.predict(X) == f.predict(X / 15)).all() and (q.predict(X) == 0).all()


@pytest.mark.parametrize("bits", [1, 25, 3.0])
def test_impossible_weight_widths_are_rejected(iris, bits):
    with pytest.raises(HwmlpError, match="impossible weight width"):
        quantize_mlp(iris[1], 4, bits)


def test_cuda_request_without_gpu_is_a_clear_error(iris, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    split, _ = iris
    with pytest.raises(HwmlpError, match="no CUDA GPU"):
        train_float(split.X_train / 15, split.y_train, [3], 3, device="cuda")
