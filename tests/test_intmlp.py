"""IntMLP: the golden model's semantics, range analysis and persistence."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp import Activation, HwmlpError, IntLayer, IntMLP


def reference_predict(mlp: IntMLP, x: list[int]) -> int:
    """The semantics written out per sample with Python integers (the specification)."""
    h = list(x)
    for layer in mlp.layers:
        out = []
        for j in range(layer.n_outputs):
            s = int(layer.biases[j])
            for i in range(layer.n_inputs):
                v = h[i] if layer.masks is None else h[i] & int(layer.masks[j, i])
                s += int(layer.weights[j, i]) * v
            a = layer.activation
            if a.kind == "relu":
                s = max(s, 0)
            elif a.kind == "qrelu":
                s = min(max(s >> a.lsb, 0), 2 ** (a.msb - a.lsb + 1) - 1)
            out.append(s)
        h = out
    keys = [v >> mlp.argmax_drop_bits for v in h]
    return keys.index(max(keys))


@st.composite
def int_mlps(draw):
    bits = draw(st.integers(1, 5))
    sizes = draw(st.lists(st.integers(1, 4), min_size=2, max_size=4))
    layers = []
    width = bits
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        W = draw(st.lists(st.lists(st.integers(-40, 40), min_size=a, max_size=a), min_size=b, max_size=b))
        B = draw(st.lists(st.integers(-300, 300), min_size=b, max_size=b))
        kind = draw(st.sampled_from(["none", "relu", "qrelu"]))
        if kind == "qrelu":
            lsb = draw(st.integers(0, 4))
            act = Activation.qrelu(lsb + draw(st.integers(0, 5)), lsb)
        else:
            act = Activation(kind)
        masks = None
        if draw(st.booleans()):
            masks = draw(st.lists(st.lists(st.integers(0, 2**width - 1), min_size=a, max_size=a), min_size=b, max_size=b))
        layers.append(IntLayer(W, B, act, masks))
        width = 8
    return IntMLP(bits, layers, argmax_drop_bits=draw(st.integers(0, 3)))


@settings(max_examples=150, deadline=None)
@given(int_mlps(), st.data())
def test_predict_matches_per_sample_definition(mlp, data):
    X = np.array(data.draw(st.lists(
        st.lists(st.integers(0, mlp.input_max), min_size=mlp.n_inputs, max_size=mlp.n_inputs),
        min_size=1, max_size=20)))
    got = mlp.predict(X)
    assert got.tolist() == [reference_predict(mlp, list(x)) for x in X.tolist()]


@settings(max_examples=100, deadline=None)
@given(int_mlps(), st.data())
def test_value_ranges_are_sound_and_first_layer_exact(mlp, data):
    X = np.array(data.draw(st.lists(
        st.lists(st.integers(0, mlp.input_max), min_size=mlp.n_inputs, max_size=mlp.n_inputs),
        min_size=1, max_size=30)))
    ranges = mlp.value_ranges()
    h = X
    for layer, r in zip(mlp.layers, ranges):
        s = layer.sums(h)
        assert (s >= np.array(r.sum_lo)).all() and (s <= np.array(r.sum_hi)).all()
        h = layer.activation.apply(s)
        assert (h >= np.array(r.out_lo)).all() and (h <= np.array(r.out_hi)).all()
    first = mlp.layers[0]
    if first.masks is None:
        # Exact: each bound is reached by setting each input to 0 or input_max by weight sign.
        hi_x = np.where(first.weights > 0, mlp.input_max, 0)
        assert ((hi_x * first.weights).sum(1) + first.biases).tolist() == ranges[0].sum_hi


def test_argmax_ties_go_to_lowest_index():
    # Identity layer: outputs equal the inputs.
    mlp = IntMLP(4, [IntLayer(np.eye(3, dtype=int), [0, 0, 0], Activation.identity())])
    assert mlp.predict([[5, 5, 5], [1, 7, 7], [3, 2, 3], [0, 0, 9]]).tolist() == [0, 1, 0, 2]


def test_argmax_drop_bits_compares_top_bits_only():
    mlp = IntMLP(4, [IntLayer(np.eye(2, dtype=int), [0, 0], Activation.identity())], argmax_drop_bits=2)
    # 5 >> 2 == 6 >> 2 == 1: a tie, so class 0 even though 6 > 5.
    assert mlp.predict([[5, 6], [3, 4]]).tolist() == [0, 1]


def test_qrelu_zero_below_slice_and_saturates_above():
    act = Activation.qrelu(msb=4, lsb=2)  # 3-bit output: bits [4:2]
    s = np.array([-9, 0, 3, 4, 7, 31, 32, 1000])
    assert act.apply(s).tolist() == [0, 0, 0, 1, 1, 7, 7, 7]
    assert act.width == 3


@pytest.mark.parametrize("msb,lsb", [(2, 3), (-1, 0), (None, 0), (61, 0)])
def test_impossible_qrelu_slice_is_rejected(msb, lsb):
    with pytest.raises(HwmlpError, match="QReLU"):
        Activation.qrelu(msb, lsb)


def test_masks_select_partial_product_bits():
    layer = IntLayer([[3, -2]], [1], Activation.identity(), masks=[[0b1010, 0b0001]])
    # 3 * (13 & 10) - 2 * (13 & 1) + 1 = 3*8 - 2 + 1
    assert layer.sums(np.array([[13, 13]])).tolist() == [[23]]


def test_json_roundtrip_is_exact(tmp_path):
    mlp = IntMLP(3, [
        IntLayer([[1, -2], [0, 4]], [5, -6], Activation.qrelu(6, 1), masks=[[7, 3], [1, 0]]),
        IntLayer([[2, -1], [-3, 1], [1, 1]], [0, 1, 2], Activation.identity()),
    ], argmax_drop_bits=1, name="t", classes=["a", "b", "c"])
    path = tmp_path / "m.json"
    mlp.save(path)
    back = IntMLP.load(path)
    assert back.equals(mlp)
    assert back.layers[0].activation == Activation.qrelu(6, 1)
    assert json.loads(path.read_text())["format"] == "hwmlp.intmlp"


@pytest.mark.parametrize("edit,match", [
    (lambda d: d.update(version=99), "version 99"),
    (lambda d: d.update(colour="red"), "unknown key"),
    (lambda d: d["layers"][0].update(biases=[1, 2, 3]), "biases shape"),
    (lambda d: d.update(input_bits=0), "input width"),
    (lambda d: d["layers"][0]["activation"].update(kind="tanh"), "unknown activation"),
])
def test_bad_model_files_are_rejected_with_a_clear_error(tmp_path, edit, match):
    d = IntMLP(4, [IntLayer([[1, 2]], [0])]).to_dict()
    edit(d)
    (tmp_path / "m.json").write_text(json.dumps(d))
    with pytest.raises(HwmlpError, match=match):
        IntMLP.load(tmp_path / "m.json")


def test_inputs_outside_the_input_width_are_rejected():
    mlp = IntMLP(4, [IntLayer([[1, 2]], [0])])
    with pytest.raises(HwmlpError, match="0..15"):
        mlp.predict([[16, 0]])
    with pytest.raises(HwmlpError, match="shape"):
        mlp.predict([[1, 2, 3]])


def test_layer_shapes_must_chain():
    with pytest.raises(HwmlpError, match="layer 1 takes 3 inputs"):
        IntMLP(4, [IntLayer([[1, 2]], [0]), IntLayer([[1, 2, 3]], [0])])
