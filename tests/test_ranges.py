"""Range analysis (hwmlp.ranges) and don't-care bits (hwmlp.dontcare): bounds, removals, equivalence."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp import Activation, IntLayer, IntMLP
from hwmlp.dontcare import drop_dont_care_bits
from hwmlp.ranges import Interval, analyze, and_bounds
from hwmlp.reference import load_published

from mlp_strategies import all_inputs, small_mlps


# ----- and_bounds ---------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.integers(-70, 70), st.integers(0, 80), st.integers(0, 300))
def test_and_bounds_are_exact(lo, span, mask):
    values = [x & mask for x in range(lo, lo + span + 1)]
    assert and_bounds(lo, lo + span, mask) == (min(values), max(values))


# ----- bounds -------------------------------------------------------------------------


def brute_force_sums(mlp: IntMLP) -> list[np.ndarray]:
    """Every neuron sum for every input vector, per layer."""
    h = all_inputs(mlp)
    sums = []
    for layer in mlp.layers:
        s = layer.sums(h)
        sums.append(s)
        h = layer.activation.apply(s)
    return sums


@settings(max_examples=80, deadline=None)
@given(small_mlps())
def test_bounds_are_exact_when_exhaustive_and_sound_otherwise(mlp):
    actual = brute_force_sums(mlp)
    exact = analyze(mlp)
    bounded = analyze(mlp, exhaustive_input_bits=0)
    assert exact.exact
    for k, s in enumerate(actual):
        for j, n in enumerate(exact.layers[k]):
            assert (n.sum.lo, n.sum.hi) == (s[:, j].min(), s[:, j].max())
            out = mlp.layers[k].activation.apply(s[:, j])
            assert (n.out.lo, n.out.hi) == (out.min(), out.max())
        for j, n in enumerate(bounded.layers[k]):
            assert n.sum.lo <= s[:, j].min() and s[:, j].max() <= n.sum.hi
            if k == 0:  # independent inputs: interval arithmetic is exact in the first layer
                assert (n.sum.lo, n.sum.hi) == (s[:, j].min(), s[:, j].max())


@settings(max_examples=80, deadline=None)
@given(small_mlps())
def test_product_bounds_are_exact_for_their_input_range(mlp):
    an = analyze(mlp)
    for k, neurons in enumerate(an.layers):
        inputs = an.inputs_of(k)
        for n in neurons:
            for t in n.terms:
                x = np.arange(inputs[t.source].lo, inputs[t.source].hi + 1)
                p = t.weight * (x if t.mask is None else x & t.mask)
                assert (t.product.lo, t.product.hi) == (p.min(), p.max())


def test_interval_widths():
    assert Interval(0, 0).width == 1 and not Interval(0, 0).signed
    assert Interval(0, 255).width == 8
    assert Interval(-128, 127).width == 8 and Interval(-128, 127).signed
    assert Interval(-129, 0).width == 9
    with pytest.raises(ValueError):
        Interval(1, 0)


# ----- removals and folding ------------------------------------------------------------


def two_layer(W1, b1, W2, b2, act1=Activation.relu(), act2=Activation.identity(), masks2=None) -> IntMLP:
    return IntMLP(3, [IntLayer(W1, b1, act1), IntLayer(W2, b2, act2, masks2)])


def test_never_positive_neuron_is_removed_and_its_fan_out_dropped():
    mlp = two_layer([[1, 2], [-3, -1], [0, 0]], [0, -1, 5], [[4, 100, 1], [1, 7, -2]], [10, 0])
    an = analyze(mlp)
    dead, constant = an.layers[0][1], an.layers[0][2]
    assert dead.constant == 0 and "never positive" in dead.reason and not dead.needs_logic
    assert constant.constant == 5 and "always 5" in constant.reason
    out0, out1 = an.layers[1]
    assert [t.source for t in out0.terms] == [0] and out0.offset == 10 + 1 * 5
    assert [t.source for t in out1.terms] == [0] and out1.offset == 0 - 2 * 5
    report = an.report()["layers"][0]
    assert report["computed"] == [0] and {r["neuron"] for r in report["not_computed"]} == {1, 2}
    assert "neuron 1 constant 0: sum [-29, -1] is never positive" in an.summary()


def test_unread_hidden_neuron_is_unused_and_constant_inputs_fold_through_masks():
    masks = [[7, 7, 6], [7, 7, 6]]
    mlp = two_layer([[1, 0], [2, 1], [0, 0]], [0, 0, 5], [[3, 0, 1], [-1, 0, 1]], [0, 0], masks2=masks)
    an = analyze(mlp)
    assert an.layers[0][1].unused and an.layers[0][1].constant is None
    assert "no computed neuron" in an.layers[0][1].reason
    assert an.layers[1][0].offset == 5 & 6  # the constant 5 seen through mask 0b110


def test_output_neurons_stay_even_when_constant():
    mlp = IntMLP(2, [IntLayer([[1], [-1]], [0, -1], Activation.relu())])
    an = analyze(mlp)
    assert an.layers[0][1].constant == 0 and not an.layers[0][1].unused


def test_qrelu_constants():
    mlp = IntMLP(1, [IntLayer([[1], [4], [1], [1]], [40, 0, 4, -9], Activation.qrelu(3, 1))])
    saturated, live, sliced, low = analyze(mlp).layers[0]
    assert saturated.constant == 7 and "saturates" in saturated.reason
    assert live.constant is None
    assert sliced.constant == 2 and "always gives 2" in sliced.reason  # [4, 5] >> 1
    assert low.constant == 0 and "never reaches 2**1" in low.reason


def test_terms_drop_zero_weights_and_masks_outside_the_input():
    masks = [[0b1000, 0b111, 0b10111]]
    mlp = IntMLP(3, [IntLayer([[5, 0, -2]], [0], Activation.identity(), masks)])
    (n,) = analyze(mlp).layers[0]
    # input 0: mask selects only bit 3, which a 3-bit input never sets; input 1: zero weight
    assert [(t.source, t.mask) for t in n.terms] == [(2, None)]


def test_published_dead_neurons(published_json):
    models = load_published(published_json)
    removed = {
        name: [n.index for n in analyze(pm.mlp).layers[0] if not n.needs_logic] for name, pm in models.items()
    }
    assert removed == {
        "Balance_Scale": [], "Cardio": [], "Energy1": [], "Energy2": [2], "Iris": [1],
        "Pendigits": [], "Vertebral_Column_3C": [1],
    }


# ----- don't-care bits ------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(small_mlps())
def test_dont_care_bits_keep_every_prediction(mlp):
    pruned, report = drop_dont_care_bits(mlp)
    X = all_inputs(mlp)
    assert np.array_equal(pruned.predict(X), mlp.predict(X))
    assert report.vectors == len(X) and len(report.dropped) <= report.tried
    for k, j, i, b in report.dropped:
        assert not pruned.layers[k].masks[j, i] >> b & 1


def test_dont_care_bits_shrink_iris(published_json):
    mlp = load_published(published_json)["Iris"].mlp
    pruned, report = drop_dont_care_bits(mlp)
    assert len(report.dropped) > 30
    assert sum(n.needs_logic for n in analyze(pruned).layers[0]) == 1  # two of three hidden neurons go
    X = all_inputs(mlp)
    assert np.array_equal(pruned.predict(X), mlp.predict(X))


def test_dont_care_search_skips_large_models_and_unmasked_signed_inputs():
    big = IntMLP(4, [IntLayer(np.ones((2, 5), int), [0, 1], Activation.relu())])
    assert drop_dont_care_bits(big)[0] is big
    signed_hidden = IntMLP(2, [IntLayer([[1], [-1]], [0, 0], Activation.identity()),
                               IntLayer([[1, 1], [2, -1]], [0, 0], Activation.identity())])
    pruned, report = drop_dont_care_bits(signed_hidden)
    assert pruned.layers[1].masks is None and all(k == 0 for k, *_ in report.dropped)
