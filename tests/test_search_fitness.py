"""The vectorized population evaluator equals IntMLP.predict bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp.errors import HwmlpError
from hwmlp.search.approx import WeightSet
from hwmlp.search.fitness import PopulationEvaluator
from hwmlp.search.genome import SearchSpace, to_intmlp
from hwmlp.search.operators import random_genome
from search_helpers import populations, samples


def reference(space, genomes, X):
    return np.stack([to_intmlp(g, space).predict(X) for g in genomes])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_predictions_equal_intmlp(data):
    space, genomes = data.draw(populations())
    X = data.draw(samples(space))
    y = np.arange(len(X)) % space.topology[-1]
    evaluator = PopulationEvaluator(space, X, y)
    expected = reference(space, genomes, X)
    np.testing.assert_array_equal(evaluator.predict(genomes), expected)
    np.testing.assert_array_equal(evaluator.accuracy(genomes), (expected == y).mean(axis=1))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_ties_go_to_the_lowest_index(data):
    """Tiny weights and many dropped argmax bits make most outputs tie."""
    space = SearchSpace((3, 2, 4), 2, WeightSet.powers_of_two(1), hidden_bits=2, max_argmax_drop=4)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    genomes = [random_genome(space, rng) for _ in range(5)]
    for g in genomes:
        g.argmax_drop = int(rng.integers(5))
    X = data.draw(samples(space))
    pred = PopulationEvaluator(space, X, np.zeros(len(X))).predict(genomes)
    np.testing.assert_array_equal(pred, reference(space, genomes, X))


@pytest.mark.parametrize(
    "input_bits, magnitude_exp",
    # first-layer product in float32, float64, float64, int64; later layers in int32, int32, int64, int64
    [(4, 4), (8, 18), (16, 30), (16, 39)],
)
def test_exact_in_every_arithmetic_regime(input_bits, magnitude_exp):
    space = SearchSpace((6, 3, 3), input_bits, WeightSet.signed_digits(3, magnitude_exp), hidden_bits=12,
                        max_lsb=48, per_neuron_lsb=False)
    rng = np.random.default_rng(magnitude_exp)
    genomes = [random_genome(space, rng) for _ in range(20)]
    X = rng.integers(0, 1 << input_bits, size=(300, 6))
    pred = PopulationEvaluator(space, X, np.zeros(300)).predict(genomes)
    np.testing.assert_array_equal(pred, reference(space, genomes, X))


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_torch_backend_matches_numpy(data):
    pytest.importorskip("torch")
    space, genomes = data.draw(populations())
    X = data.draw(samples(space))
    y = np.zeros(len(X), dtype=int)
    torch_eval = PopulationEvaluator(space, X, y, backend="torch", device="auto")
    np.testing.assert_array_equal(torch_eval.predict(genomes), reference(space, genomes, X))


def test_population_is_evaluated_in_chunks_within_the_memory_budget():
    space = SearchSpace((4, 3, 2), 3, WeightSet.fixed_point(6))
    rng = np.random.default_rng(1)
    genomes = [random_genome(space, rng) for _ in range(7)]
    X = rng.integers(0, 8, size=(50, 4))
    tiny = PopulationEvaluator(space, X, np.zeros(50), memory_budget_bytes=1)
    np.testing.assert_array_equal(tiny.predict(genomes), reference(space, genomes, X))


def test_rejects_samples_outside_the_input_range():
    space = SearchSpace((2, 2), 3, WeightSet.fixed_point(4))
    with pytest.raises(HwmlpError, match="0..7"):
        PopulationEvaluator(space, np.array([[8, 0]]), [0])
    with pytest.raises(HwmlpError, match="shape"):
        PopulationEvaluator(space, np.array([[1, 2, 3]]), [0])
    with pytest.raises(HwmlpError, match="backend"):
        PopulationEvaluator(space, np.array([[1, 2]]), [0], backend="jax")
