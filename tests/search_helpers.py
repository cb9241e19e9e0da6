"""Hypothesis strategies shared by the tests of hwmlp.search."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from hwmlp.search.approx import WeightSet
from hwmlp.search.genome import SearchSpace
from hwmlp.search.operators import random_genome

weight_sets = st.one_of(
    st.integers(0, 6).map(WeightSet.powers_of_two),
    st.tuples(st.integers(1, 3), st.integers(1, 8)).map(lambda a: WeightSet.signed_digits(*a)),
    st.integers(2, 9).map(WeightSet.fixed_point),
)


@st.composite
def spaces(draw, max_hidden_layers: int = 2) -> SearchSpace:
    """Small random search spaces: 1-3 layers, narrow inputs and QReLUs."""
    hidden = draw(st.lists(st.integers(1, 4), max_size=max_hidden_layers))
    topology = (draw(st.integers(1, 5)), *hidden, draw(st.integers(2, 4)))
    return SearchSpace(
        topology,
        input_bits=draw(st.integers(1, 4)),
        weights=draw(weight_sets),
        hidden_bits=draw(st.integers(1, 5)),
        max_lsb=draw(st.integers(0, 8)),
        max_argmax_drop=draw(st.integers(0, 6)),
        output_activation=draw(st.sampled_from(["none", "relu"])),
        per_neuron_lsb=draw(st.booleans()),
    )


@st.composite
def populations(draw, space_strategy=None, size=(1, 6)):
    """``(space, genomes)``: random genomes, with random argmax bits, of a random space."""
    space = draw(spaces() if space_strategy is None else space_strategy)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    genomes = [random_genome(space, rng) for _ in range(draw(st.integers(*size)))]
    for g in genomes:
        g.argmax_drop = int(rng.integers(space.max_argmax_drop + 1))
    return space, genomes


@st.composite
def samples(draw, space: SearchSpace, max_n: int = 40) -> np.ndarray:
    """Random input samples for ``space``, extremes included."""
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    top = (1 << space.input_bits) - 1
    X = rng.integers(0, top + 1, size=(n, space.topology[0]))
    X[0] = top
    return X
