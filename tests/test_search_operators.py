"""Genetic operators: each does what it says and keeps genomes inside the search space."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp.search import operators as ops
from hwmlp.arith.csd import csd
from hwmlp.search.approx import WeightSet, csd_digit_count
from hwmlp.search.genome import Genome, SearchSpace
from search_helpers import populations

MUTATIONS = list(ops.MUTATION_RATES)


def _small():
    space = SearchSpace((4, 3, 2), 3, WeightSet.signed_digits(2, 5), hidden_bits=4)
    return space, ops.random_genome(space, np.random.default_rng(3))


def changed_genes(a: Genome, b: Genome) -> list[tuple]:
    """Positions where two genomes differ: (field, layer, index...)."""
    diffs = []
    for f in Genome.LAYER_GENES:
        for l, (x, y) in enumerate(zip(getattr(a, f), getattr(b, f))):
            diffs += [(f, l, *map(int, idx)) for idx in zip(*np.nonzero(x != y))]
    diffs += [("width", int(i)) for i in np.flatnonzero(a.width != b.width)]
    return diffs + ([("argmax_drop",)] if a.argmax_drop != b.argmax_drop else [])


@settings(max_examples=80, deadline=None)
@given(populations(), st.sampled_from(MUTATIONS), st.integers(0, 2**32 - 1))
def test_mutations_stay_in_the_space_and_touch_one_gene_group(space_genomes, name, seed):
    space, genomes = space_genomes
    rng = np.random.default_rng(seed)
    for g in genomes:
        before = g.copy()
        out = getattr(ops, name)(g, space=space, rng=rng)
        assert out == (g,)
        g.check(space)
        diffs = changed_genes(before, g)
        fields = {d[0] for d in diffs}
        if name in ("mut_weight_step", "mut_sign", "mut_zero"):
            assert len(diffs) <= 1 and fields <= {"weights"}
        elif name == "mut_drop_input":
            assert fields <= {"weights"} and len({d[1:4:2] for d in diffs}) <= 1  # one (layer, input)
            if diffs:
                _, l, _, i = diffs[0]
                assert before.weights[l][:, i].any() and not g.weights[l][:, i].any()
        elif name == "mut_mask":
            assert len(diffs) <= 1 and fields <= {"masks"}
            if diffs:
                _, l, j, i = diffs[0]
                assert bin(int(before.masks[l][j, i] ^ g.masks[l][j, i])).count("1") == 1
        elif name == "mut_qrelu":
            assert fields <= {"lsb", "width"}
            if fields == {"width"}:
                (_, l), = diffs
                assert abs(int(g.width[l]) - int(before.width[l])) == 1
            elif fields == {"lsb"}:
                layers = {d[1] for d in diffs}
                assert len(layers) == 1
                l = layers.pop()
                assert len(diffs) == (1 if space.per_neuron_lsb else space.topology[l + 1])
                assert len(set((g.lsb[l] - before.lsb[l])[g.lsb[l] != before.lsb[l]].tolist()) & {-1, 1}) == 1
        elif name == "mut_bias":
            assert len(diffs) <= 1 and fields <= {"biases"}
            if diffs:
                _, l, j = diffs[0]
                step = abs(int(g.biases[l][j] - before.biases[l][j]))
                assert step & (step - 1) == 0  # a power of two
        else:
            assert fields <= {"argmax_drop"} and abs(g.argmax_drop - before.argmax_drop) <= 1


@settings(max_examples=60, deadline=None)
@given(populations(size=(1, 1)), st.integers(0, 2**32 - 1))
def test_weight_step_moves_one_csd_digit_by_one_power_of_two(space_genomes, seed):
    space, (g,) = space_genomes
    rng = np.random.default_rng(seed)
    for _ in range(20):
        before = g.copy()
        ops.mut_weight_step(g, space=space, rng=rng)
        diffs = changed_genes(before, g)
        if not diffs:
            continue
        _, l, j, i = diffs[0]
        old, new = int(before.weights[l][j, i]), int(g.weights[l][j, i])
        shifted = {old - s * (1 << e) + s * (1 << (e + d) if e + d >= 0 else 0)
                   for s, e in ((digit.sign, digit.shift) for digit in csd(old)) for d in (-1, 1)}
        added = {old + s * (1 << e) for s in (-1, 1) for e in range(space.weights.max_exponent + 1)}
        assert new in shifted | added


def test_sign_and_zero_act_on_nonzero_weights():
    space, g = _small()
    rng = np.random.default_rng(0)
    for _ in range(10):
        before = g.copy()
        ops.mut_sign(g, space=space, rng=rng)
        (_, l, j, i), = changed_genes(before, g)
        assert g.weights[l][j, i] == -before.weights[l][j, i] != 0
    while any(W.any() for W in g.weights):
        ops.mut_zero(g, space=space, rng=rng)
    before = g.copy()
    for mutation in (ops.mut_zero, ops.mut_sign, ops.mut_mask):  # nothing left to act on
        mutation(g, space=space, rng=rng)
    assert g.same_genes(before)


@settings(max_examples=60, deadline=None)
@given(populations(size=(2, 2)), st.integers(0, 2**32 - 1))
def test_crossover_exchanges_whole_neurons(space_genomes, seed):
    space, (a, b) = space_genomes
    a0, b0 = a.copy(), b.copy()
    ops.cx_neurons(a, b, space=space, rng=np.random.default_rng(seed))
    for child in (a, b):
        child.check(space)
    def neuron(g, l, j):
        lsb = int(g.lsb[l][j]) if l < space.n_hidden and space.per_neuron_lsb else None
        return g.weights[l][j].tolist(), g.masks[l][j].tolist(), int(g.biases[l][j]), lsb

    def layer(g, l):
        return int(g.width[l]), None if space.per_neuron_lsb else g.lsb[l].tolist()

    for l in range(space.n_layers):
        for j in range(space.topology[l + 1]):
            pair = neuron(a, l, j), neuron(b, l, j)
            assert pair in ((neuron(a0, l, j), neuron(b0, l, j)), (neuron(b0, l, j), neuron(a0, l, j)))
    for l in range(space.n_hidden):
        assert (layer(a, l), layer(b, l)) in ((layer(a0, l), layer(b0, l)), (layer(b0, l), layer(a0, l)))
    assert {a.argmax_drop, b.argmax_drop} == {a0.argmax_drop, b0.argmax_drop}


@settings(max_examples=40, deadline=None)
@given(populations(size=(1, 1)), st.integers(0, 2**32 - 1))
def test_sparse_copies_prune_the_seed(space_genomes, seed):
    space, (g,) = space_genomes
    sparse = ops.sparse_copy(g, space, np.random.default_rng(seed))
    sparse.check(space)
    for W, S in zip(g.weights, sparse.weights):
        assert (S[W == 0] == 0).all() and (csd_digit_count(S) <= 1).all()
        kept = S != 0
        assert (np.abs(S[kept] - W[kept]) <= np.abs(W[kept]) / 2).all()  # the nearest power of two
    assert (sparse.masks[0] & ~g.masks[0] == 0).all()  # masks only lose bits
    assert (sparse.width <= g.width).all()


def test_mutate_applies_registered_operators_by_rate():
    calls = []

    class Box:
        def mut_a(self, g):
            calls.append("a")

        def mut_b(self, g):
            calls.append("b")

    genome = object()
    rng = np.random.default_rng(0)
    for _ in range(400):
        assert ops.mutate(genome, Box(), {"mut_a": 3.0, "mut_b": 1.0}, extra=0.0, rng=rng) == (genome,)
    assert len(calls) == 400
    assert calls.count("a") / 400 == pytest.approx(0.75, abs=0.06)
