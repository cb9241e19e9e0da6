"""Hypothesis strategies for small integer MLPs whose whole input space can be enumerated."""

import numpy as np
from hypothesis import strategies as st

from hwmlp import Activation, IntLayer, IntMLP


def all_inputs(mlp: IntMLP) -> np.ndarray:
    """Every input vector of ``mlp``, row ``k`` being the one whose packed ``x`` is ``k``."""
    codes = np.arange(1 << (mlp.n_inputs * mlp.input_bits), dtype=np.int64)
    return (codes[:, None] >> (np.arange(mlp.n_inputs) * mlp.input_bits)) & mlp.input_max


@st.composite
def activations(draw):
    kind = draw(st.sampled_from(["none", "relu", "relu", "qrelu"]))
    if kind == "qrelu":
        lsb = draw(st.integers(0, 4))
        return Activation.qrelu(lsb + draw(st.integers(0, 6)), lsb)
    return Activation(kind)


@st.composite
def small_mlps(draw, max_input_bits: int = 10, one_source_output: bool = False):
    """Models with at most ``max_input_bits`` input bits: sparse signed weights, biases
    negative enough to kill neurons, random masks (also over sign-extension bits of
    signed hidden values), every activation, and ``argmax_drop_bits``.
    ``one_source_output``: the output layer reads a single input."""
    bits = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, max_input_bits // bits))] + draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    weight = st.one_of(st.just(0), st.integers(-40, 40))
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        W = draw(st.lists(st.lists(weight, min_size=a, max_size=a), min_size=b, max_size=b))
        if one_source_output and len(layers) == len(sizes) - 2:
            keep = draw(st.integers(0, a - 1))
            W = [[w if i == keep else 0 for i, w in enumerate(row)] for row in W]
        B = draw(st.lists(st.integers(-600, 300), min_size=b, max_size=b))
        masks = None
        if draw(st.booleans()):
            masks = draw(st.lists(st.lists(st.integers(0, 2**12 - 1), min_size=a, max_size=a), min_size=b, max_size=b))
        layers.append(IntLayer(W, B, draw(activations()), masks))
    return IntMLP(bits, layers, argmax_drop_bits=draw(st.integers(0, 4)))
