"""Genome <-> IntMLP mapping and the search space's gene domains."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp.errors import HwmlpError
from hwmlp.intmlp import Activation, IntLayer, IntMLP
from hwmlp.search.approx import WeightSet
from hwmlp.search.genome import Genome, SearchSpace, from_intmlp, to_intmlp
from search_helpers import populations, spaces

SPACE = SearchSpace((2, 2, 2), 4, WeightSet.powers_of_two(6), hidden_bits=3, max_lsb=6)


def hand_genome(**changes) -> Genome:
    genes = dict(
        weights=[np.array([[4, -2], [1, 0]]), np.array([[2, 1], [-1, 8]])],
        masks=[np.array([[15, 12], [3, 15]]), np.array([[7, 7], [7, 5]])],
        biases=[np.array([5, -3]), np.array([0, 2])],
        lsb=[np.array([2, 0])],
        width=np.array([3]),
        argmax_drop=1,
    )
    return Genome(**{**genes, **changes})


def test_per_neuron_lsb_folds_into_weights_and_one_qrelu_slice():
    mlp = to_intmlp(hand_genome(), SPACE, name="hand")
    hidden, out = mlp.layers
    assert hidden.activation == Activation.qrelu(4, 2)  # layer slice [L + width - 1 : L], L = max lsb = 2
    np.testing.assert_array_equal(hidden.weights, [[4, -2], [4, 0]])  # neuron 1 (lsb 0) scaled by 2**2
    np.testing.assert_array_equal(hidden.biases, [5, -12])
    np.testing.assert_array_equal(hidden.masks, [[15, 12], [3, 15]])
    np.testing.assert_array_equal(out.masks, [[7, 7], [7, 5]])
    assert out.activation.kind == "none" and mlp.argmax_drop_bits == 1
    # neuron 1 by hand: clip((1 * (x0 & 3) - 3) >> 0, 0, 7)
    for x0 in range(16):
        assert mlp.activations(np.array([[x0, 0]]))[0][0, 1] == min(max((x0 & 3) - 3, 0), 7)


def test_full_masks_are_left_out_and_inactive_mask_bits_dropped():
    g = hand_genome(masks=[np.full((2, 2), 15), np.array([[7, 7], [7, 7]])])
    assert all(layer.masks is None for layer in to_intmlp(g, SPACE).layers)
    g.width[0] = 2  # the hidden outputs are 2 bits wide now: mask bit 2 is inactive
    g.masks[1][1, 1] = 0b101
    np.testing.assert_array_equal(to_intmlp(g, SPACE).layers[1].masks, [[3, 3], [3, 1]])


@settings(max_examples=60, deadline=None)
@given(populations(spaces().filter(lambda s: not s.per_neuron_lsb)))
def test_models_a_genome_can_express_map_back_exactly(space_genomes):
    space, genomes = space_genomes
    for g in genomes:
        mlp = to_intmlp(g, space)
        assert to_intmlp(from_intmlp(mlp, space), space).equals(mlp)


def test_a_relu_seed_becomes_a_qrelu_slice_keeping_the_top_bits():
    seed = IntMLP(4, [
        IntLayer([[16]], [0], Activation.relu()),  # sums 0..240: 8 bits
        IntLayer([[3], [-1]], [100, 37], Activation.identity()),
    ])
    space = SearchSpace((1, 1, 2), 4, WeightSet.fixed_point(8), hidden_bits=4)
    g = from_intmlp(seed, space)
    np.testing.assert_array_equal(g.lsb[0], [4])  # keep bits [7:4]
    assert g.width[0] == 4
    np.testing.assert_array_equal(g.biases[1], [6, 2])  # 100 / 16 and 37 / 16, rounded
    X = np.arange(16)[:, None]
    assert (to_intmlp(g, space).predict(X) == seed.predict(X)).mean() > 0.9


def test_a_too_wide_qrelu_seed_keeps_the_top_of_its_slice():
    seed = IntMLP(4, [
        IntLayer([[16]], [0], Activation.qrelu(5, 0)),  # 6-bit slice [5:0], saturates at 63
        IntLayer([[1], [-1]], [-20, 0], Activation.identity()),
    ])
    space = SearchSpace((1, 1, 2), 4, WeightSet.fixed_point(8), hidden_bits=4)
    g = from_intmlp(seed, space)
    assert (int(g.lsb[0][0]), int(g.width[0])) == (2, 4)  # slice [5:2]: same saturation, 2 low bits fewer
    X = np.arange(16)[:, None]
    hidden = to_intmlp(g, space).activations(X)[0]
    np.testing.assert_array_equal(hidden, seed.activations(X)[0] >> 2)
    np.testing.assert_array_equal(g.biases[1], [-5, 0])


def test_slices_of_a_deep_relu_seed_sit_on_the_rescaled_sums():
    """Each hidden layer's sums shrink by the slices before it: the second slice and the
    biases after it must follow (else the second layer's slice reads zeros)."""
    seed = IntMLP(4, [
        IntLayer([[16]], [0], Activation.relu()),  # 0..240: slice [7:4] -> x
        IntLayer([[16]], [32], Activation.relu()),  # 256 x + 32 in the seed, 16 x + 2 in the genome
        IntLayer([[1], [-1]], [0, 2112], Activation.identity()),  # class 0 from x >= 4
    ])
    space = SearchSpace((1, 1, 1, 2), 4, WeightSet.fixed_point(8), hidden_bits=4)
    g = from_intmlp(seed, space)
    assert [int(lsb[0]) for lsb in g.lsb] == [4, 4] and g.width.tolist() == [4, 4]
    np.testing.assert_array_equal(g.biases[1], [2])  # 32 / 16
    np.testing.assert_array_equal(g.biases[2], [0, 8])  # 2112 / 256, rounded
    X = np.arange(16)[:, None]
    np.testing.assert_array_equal(to_intmlp(g, space).activations(X)[1][:, 0], X[:, 0])
    np.testing.assert_array_equal(to_intmlp(g, space).predict(X), seed.predict(X))


def test_seed_weights_are_projected_onto_the_weight_set():
    seed = IntMLP(3, [IntLayer([[5, -7], [100, 0]], [1, 2], Activation.identity())])
    g = from_intmlp(seed, SearchSpace((2, 2), 3, WeightSet.powers_of_two(5)))
    np.testing.assert_array_equal(g.weights[0], [[4, -8], [32, 0]])


def test_a_space_for_a_model_takes_its_shape():
    seed = IntMLP(3, [IntLayer([[5, -7], [1, 0]], [1, 2], Activation.relu()),
                      IntLayer([[1, 1], [2, 0], [0, 1]], [0, 0, 0], Activation.relu())])
    space = SearchSpace.for_model(seed, WeightSet.powers_of_two(4), hidden_bits=5)
    assert (space.topology, space.input_bits, space.output_activation, space.hidden_bits) == ((2, 2, 3), 3, "relu", 5)
    from_intmlp(seed, space).check(space)


def test_seed_must_fit_the_space():
    seed = IntMLP(3, [IntLayer([[5, -7], [1, 0]], [1, 2], Activation.identity())])
    with pytest.raises(HwmlpError, match="does not fit"):
        from_intmlp(seed, SearchSpace((3, 2), 3, WeightSet.powers_of_two(5)))
    with pytest.raises(HwmlpError, match="output activation"):
        from_intmlp(seed, SearchSpace((2, 2), 3, WeightSet.powers_of_two(5), output_activation="relu"))


@pytest.mark.parametrize("change, message", [
    (lambda g: g.weights[0].__setitem__((0, 0), 3), "weight set"),
    (lambda g: g.masks[0].__setitem__((0, 0), 16), "masks wider"),
    (lambda g: g.lsb[0].__setitem__(0, 7), "low bits"),
    (lambda g: g.width.__setitem__(0, 4), "widths"),
    (lambda g: setattr(g, "argmax_drop", 25), "argmax"),
    (lambda g: g.biases.pop(), "layers"),
])
def test_check_rejects_genes_outside_their_domain(change, message):
    g = hand_genome()
    g.check(SPACE)
    change(g)
    with pytest.raises(HwmlpError, match=message):
        g.check(SPACE)


def test_shared_lsb_spaces_refuse_per_neuron_low_bits():
    space = SearchSpace((2, 2, 2), 4, WeightSet.powers_of_two(6), hidden_bits=3, max_lsb=6, per_neuron_lsb=False)
    with pytest.raises(HwmlpError, match="per-neuron"):
        hand_genome().check(space)


@given(populations())
def test_serialization_round_trips(space_genomes):
    space, genomes = space_genomes
    assert SearchSpace.from_dict(space.to_dict()) == space
    for g in genomes:
        back = Genome.from_dict(g.to_dict())
        assert back.same_genes(g)
        back.check(space)
    other = genomes[0].copy()
    other.argmax_drop += 1
    assert not other.same_genes(genomes[0])


@pytest.mark.parametrize("kwargs", [
    dict(topology=(3,)), dict(topology=(3, 1)), dict(input_bits=0), dict(hidden_bits=17),
    dict(max_lsb=59), dict(output_activation="qrelu"),
])
def test_impossible_spaces_are_refused(kwargs):
    args = dict(topology=(3, 2), input_bits=4, weights=WeightSet.powers_of_two(3))
    with pytest.raises(HwmlpError):
        SearchSpace(**{**args, **kwargs})


@given(st.integers(1, 3))
def test_space_shape_helpers(n_hidden):
    space = SearchSpace((4, *[3] * n_hidden, 2), 5, WeightSet.fixed_point(8), hidden_bits=6)
    assert space.n_layers == n_hidden + 1 and space.n_hidden == n_hidden
    assert [space.in_bits(l) for l in range(space.n_layers)] == [5] + [6] * n_hidden
