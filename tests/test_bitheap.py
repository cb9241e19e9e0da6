"""Bespoke arithmetic (hwmlp.arith) and the bit-heap circuit generator: every piece against integers,
every generated classifier against IntMLP.predict (gate-level evaluation, and synthesized netlists)."""

import itertools
import shutil

import numpy as np
import pytest
from amaranth.hdl import Signal
from hypothesis import given, settings
from hypothesis import strategies as st
from mlp_strategies import all_inputs, small_mlps

from hwmlp import Activation, HwmlpError, IntLayer, IntMLP
from hwmlp.arith.bitheap import STRATEGIES, BitHeap
from hwmlp.arith.compare import argmax, less_than
from hwmlp.arith.csd import csd
from hwmlp.arith.decision import ThresholdRule, threshold_index, threshold_rule
from hwmlp.arith.logic import Logic
from hwmlp.arith.sharing import FUNDAMENTALS, choose_fundamental, heap_bits, multiple_word, split_factor
from hwmlp.arith.word import Word
from hwmlp.ranges import Interval
from hwmlp.reference import load_published
from hwmlp.arith.classifier import BitHeapClassifier
from hwmlp.rtl import choose_structure, circuit, to_verilog, top_name
from hwmlp.synth import Netlist, NetlistSim, synthesize

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")


def exhaustive(n_inputs: int) -> tuple[list[Signal], list[tuple[Signal, int]], int]:
    """``n_inputs`` input bits and their packed levels over all 2**n_inputs vectors
    (vector ``v`` sets input ``k`` to bit ``k`` of ``v``)."""
    xs = [Signal(name=f"i{k}") for k in range(n_inputs)]
    n = 1 << n_inputs
    levels = [sum(1 << v for v in range(n) if v >> k & 1) for k in range(n_inputs)]
    return xs, list(zip(xs, levels)), n


def vector_values(levels: list[int], n: int, signed: bool = False) -> list[int]:
    """Integers per vector from packed bit levels (least significant bit first)."""
    values = [sum((lv >> v & 1) << k for k, lv in enumerate(levels)) for v in range(n)]
    if signed:
        top = 1 << (len(levels) - 1)
        values = [x - 2 * top if x & top else x for x in values]
    return values


# ----- canonical signed digits ------------------------------------------------------------


def fewest_signed_digits(c: int) -> int:
    """Fewest terms +-2**k summing to c (the specification CSD must meet)."""
    if c == 0:
        return 0
    if c % 2 == 0:
        return fewest_signed_digits(c // 2)
    return 1 + min(fewest_signed_digits((c - 1) // 2), fewest_signed_digits((c + 1) // 2)) if abs(c) > 1 else 1


@given(st.integers(-(2**40), 2**40))
def test_csd_reconstructs_and_is_non_adjacent(c):
    digits = csd(c)
    assert sum(d.value for d in digits) == c
    shifts = [d.shift for d in digits]
    assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))
    assert len(digits) <= bin(abs(c)).count("1")


def test_csd_has_fewest_digits():
    for c in range(-600, 600):
        assert len(csd(c)) == fewest_signed_digits(c)
    assert csd(7) == ((0, -1), (3, 1))


# ----- gates ------------------------------------------------------------------------------


def test_gates_fold_constants_and_hash():
    lg = Logic()
    a, b = Signal(), Signal()
    assert lg.nand(a, 0) == 1 and lg.nand(1, 1) == 0 and lg.nand(0, 0) == 1
    na = lg.nand(a, 1)
    assert na is lg.not_(a) and lg.not_(na) is a
    assert lg.nand(a, na) == 1
    assert lg.nand(a, b) is lg.nand(b, a)
    assert lg.mux(a, b, b) is b and lg.mux(a, 1, 0) is a
    assert lg.count() == {"nand": 1, "not": 1}


@pytest.mark.parametrize("consts", [(), (0,), (1,), (0, 1), (1, 1)])
def test_adders_and_gates_truth_tables(consts):
    lg = Logic()
    xs, inputs, n = exhaustive(3 - len(consts))
    a, b, c = [*xs, *consts]
    s, carry = lg.full_adder(a, b, c)
    outs = [s, carry, lg.carry(a, b, c), lg.xor(a, b), lg.mux(a, b, c), lg.parity([a, b, c]), lg.or_(a, b)]
    levels = lg.evaluate(inputs, outs + [a, b, c], n)
    for v in range(n):
        *got, va, vb, vc = [lv >> v & 1 for lv in levels]
        total = va + vb + vc
        assert got == [total & 1, total >> 1, total >> 1, va ^ vb, vb if va else vc, total & 1, va | vb]


def test_full_adder_is_nine_nands():
    lg = Logic()
    lg.full_adder(Signal(), Signal(), Signal())
    assert lg.count() == {"nand": 9, "not": 0}


def test_evaluate_requires_every_input():
    lg = Logic()
    y = lg.nand(Signal(), Signal())
    with pytest.raises(ValueError):
        lg.evaluate([], [y], 1)


# ----- words, comparators, argmax ------------------------------------------------------------


@given(st.integers(-300, 300), st.one_of(st.none(), st.integers(0, 2**12)))
def test_word_weighted_bits_give_value_and_masked_value(value, mask):
    def total(word, m=None):
        return sum(b * weight for b, weight in word.weighted_bits(m))

    w = Word.constant(value)
    assert total(w, mask) == (value if mask is None else value & mask)
    assert total(w.extended(w.width + 3, True)) == value
    assert total(w.shift_right(2)) == value >> 2
    assert total(w.shift_right(40)) == value >> 40


@pytest.mark.parametrize("wa,sa,wb,sb", [(3, False, 3, False), (3, True, 2, True), (2, False, 3, True), (3, True, 3, False)])
def test_less_than_exhaustive(wa, sa, wb, sb):
    lg = Logic()
    xs, inputs, n = exhaustive(wa + wb)
    a, b = Word(tuple(xs[:wa]), sa), Word(tuple(xs[wa:]), sb)
    (lt,) = lg.evaluate(inputs, [less_than(lg, a, b)], n)
    va = vector_values(lg.evaluate(inputs, list(a.bits), n), n, sa)
    vb = vector_values(lg.evaluate(inputs, list(b.bits), n), n, sb)
    assert [lt >> v & 1 for v in range(n)] == [int(x < y) for x, y in zip(va, vb)]


@pytest.mark.parametrize("n_values", [1, 2, 3, 5])
def test_argmax_first_maximum_with_ties(n_values):
    lg = Logic()
    xs, inputs, n = exhaustive(2 * n_values)
    words = [Word(tuple(xs[2 * k : 2 * k + 2])) for k in range(n_values)]
    index = argmax(lg, words)
    got = vector_values(lg.evaluate(inputs, list(index.bits), n), n)
    values = [vector_values(lg.evaluate(inputs, list(w.bits), n), n) for w in words]
    for v in range(n):
        row = [vals[v] for vals in values]
        assert got[v] == row.index(max(row))


# ----- bit heaps ---------------------------------------------------------------------------------


@settings(max_examples=120, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(-300, 300)), max_size=12),
    st.integers(-(2**20), 2**20),
    st.integers(1, 14),
    st.sampled_from(STRATEGIES),
    st.sets(st.integers(0, 13)),
)
def test_bit_heap_sums_modulo_its_width(terms, constant, width, strategy, needed):
    lg = Logic()
    xs, inputs, n = exhaustive(6)
    heap = BitHeap(lg, width)
    heap.add_constant(constant)
    for k, factor in terms:
        heap.add_multiple(xs[k], factor)
    needed &= set(range(width))
    bits = heap.sum_bits(needed, strategy)
    assert [k for k, b in enumerate(bits) if b is not None] == sorted(needed)
    levels = lg.evaluate(inputs, [b for b in bits if b is not None], n)
    for v in range(n):
        want = (constant + sum(f * (v >> k & 1) for k, f in terms)) % (1 << width)
        assert [lv >> v & 1 for lv in levels] == [want >> k & 1 for k in sorted(needed)]


def test_bit_heap_puts_one_bit_per_signed_digit():
    lg = Logic()
    heap = BitHeap(lg, 12)
    x = Signal()
    heap.add_multiple(x, 0b0111_0111)  # 119 = 2**7 - 2**3 - 1: three bits, not six
    assert heap.n_bits == 3 and heap.constant == (-(2**3) - 1) % 2**12  # negative digits: NOT x plus a constant


# ----- shared multiples --------------------------------------------------------------------------


@given(st.integers(-500, 500), st.sampled_from([3, 5, 7, 15, 45]), st.integers(1, 12), st.integers(1, 16))
def test_split_factor_is_exact_and_never_worse(w, f, width, shared_width):
    a, c = split_factor(w, f, width, shared_width)
    assert a + c * f == w
    assert heap_bits(a, width) + heap_bits(c, shared_width) <= heap_bits(w, width)


def test_fundamental_is_chosen_only_when_it_saves_bits():
    h = Interval(0, 255)  # 8 bits

    def saving(weights, f):
        shared = Interval(0, 255 * f).width
        split = [split_factor(w, f, 8, shared) for w in weights]
        cost = heap_bits(f, 8) + sum(heap_bits(a, 8) + heap_bits(c, shared) for a, c in split)
        return sum(heap_bits(w, 8) for w in weights) - cost

    # 45 is four signed digits of h (32 heap bits), one of 45h (14): 45h's own heap
    # (32) pays for itself only with enough users
    assert choose_fundamental([45], h) is None
    assert choose_fundamental([45, 90, -45], h) == 45
    assert saving([45, 90, -45], 45) == max(saving([45, 90, -45], f) for f in FUNDAMENTALS) > 0
    assert choose_fundamental([1, 2, -4], h) is None  # single digits: nothing to share


@pytest.mark.parametrize("f", [3, 7, 9, 63])
def test_multiple_word_is_f_times_h(f):
    lg = Logic()
    xs, inputs, n = exhaustive(5)
    word = multiple_word(lg, Word(tuple(xs)), Interval(0, 31), f)
    assert vector_values(lg.evaluate(inputs, list(word.bits), n), n) == [f * v for v in range(n)]


# ----- decision by thresholds ------------------------------------------------------------------------


def one_source_model(weights, biases, act=Activation.relu()) -> IntMLP:
    """Two layers whose output layer reads hidden neuron 0 only."""
    hidden = IntLayer([[3, -2], [1, 1]], [-4, 0], Activation.relu())
    return IntMLP(3, [hidden, IntLayer([[w, 0] for w in weights], biases, act)], argmax_drop_bits=1)


def test_threshold_rule_is_the_class_of_every_value():
    mlp = one_source_model([5, -3, 1], [0, 40, 10])
    an = BitHeapClassifier(mlp, dont_care_input_bits=0).analysis
    rule = threshold_rule(an)
    assert rule.source == 0 and len(rule.classes) == len(rule.thresholds) + 1
    h = np.arange(an.inputs_of(1)[0].lo, an.inputs_of(1)[0].hi + 1)
    outputs = np.stack([np.maximum(w * h + b, 0) for w, b in ((5, 0), (-3, 40), (1, 10))], axis=1)
    expected = np.argmax(outputs >> 1, axis=1)
    got = np.array([rule.classes[np.searchsorted(rule.thresholds, v, side="right")] for v in h])
    assert np.array_equal(got, expected)
    assert threshold_rule(BitHeapClassifier(IntMLP(3, [IntLayer([[1, 2], [2, 1]], [0, 0])])).analysis) is None


@pytest.mark.parametrize("signed", [False, True])
def test_threshold_index_exhaustive(signed):
    lg = Logic()
    xs, inputs, n = exhaustive(5)
    rule = ThresholdRule(0, (-3, 2, 9) if signed else (2, 9, 20), (1, 0, 2, 1))
    index = threshold_index(lg, Word(tuple(xs), signed), rule, 2)
    got = vector_values(lg.evaluate(inputs, list(index.bits), n), n)
    values = vector_values(lg.evaluate(inputs, xs, n), n, signed)
    assert got == [rule.classes[sum(v >= t for t in rule.thresholds)] for v in values]


def test_classifier_decides_by_thresholds_when_cheaper():
    mlp = one_source_model([5, -3, 1], [0, 40, 10])
    c = BitHeapClassifier(mlp, dont_care_input_bits=0)
    assert c.decision is not None
    X = all_inputs(mlp)
    assert np.array_equal(c.simulate(X), mlp.predict(X))


@settings(max_examples=100, deadline=None)
@given(small_mlps(one_source_output=True))
def test_one_source_classifiers_equal_predict_on_every_input(mlp):
    X = all_inputs(mlp)
    assert np.array_equal(BitHeapClassifier(mlp, dont_care_input_bits=0).simulate(X), mlp.predict(X))


# ----- whole classifiers ---------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(small_mlps(), st.sampled_from(STRATEGIES), st.sampled_from([0, 16]), st.booleans())
def test_generated_logic_equals_predict_on_every_input(mlp, compression, dont_care_input_bits, share):
    X = all_inputs(mlp)
    c = BitHeapClassifier(mlp, compression=compression, dont_care_input_bits=dont_care_input_bits,
                          share_multiples=share)
    assert np.array_equal(c.simulate(X), mlp.predict(X))


def test_published_models_on_their_test_vectors(published_json):
    for name, pm in load_published(published_json).items():
        rng = np.random.default_rng(0)
        X = np.vstack([pm.test_X, rng.integers(0, pm.mlp.input_max + 1, (2000, pm.mlp.n_inputs))])
        assert np.array_equal(BitHeapClassifier(pm.mlp).simulate(X), pm.mlp.predict(X)), name


def test_verilog_is_deterministic_and_structures_are_checked():
    mlp = IntMLP(2, [IntLayer([[3, -5], [1, 2]], [1, -2], Activation.relu()),
                     IntLayer([[2, -1], [-3, 4]], [0, 1], Activation.qrelu(4, 1))], argmax_drop_bits=1)
    assert to_verilog(mlp) == to_verilog(mlp)
    assert to_verilog(mlp) != to_verilog(mlp, structure="plain")
    with pytest.raises(HwmlpError, match="unknown circuit structure"):
        circuit(mlp, "wallace")


@needs_yosys
@pytest.mark.parametrize("structure", ["bitheap", "bitheap-dadda", "plain"])
def test_synthesized_netlist_equals_predict_on_every_input(structure, tmp_path):
    mlp = IntMLP(3, [
        IntLayer([[7, -5, 0], [-3, 6, 2], [-9, -9, -9]], [4, -20, -1], Activation.relu(),
                 masks=[[7, 6, 7], [3, 7, 7], [7, 7, 7]]),
        IntLayer([[5, -3, 11], [-2, 7, 1], [1, 1, 1]], [3, -6, 0], Activation.qrelu(6, 2)),
    ], argmax_drop_bits=1)
    path = tmp_path / "mlp.v"
    path.write_text(to_verilog(mlp, structure=structure))
    result = synthesize(path, top_name(mlp), tmp_path / "synth")
    X = all_inputs(mlp)
    assert np.array_equal(NetlistSim(Netlist.from_yosys_json(result.netlist_json, top_name(mlp))).predict(X),
                          mlp.predict(X))


@needs_yosys
def test_iris_bit_heaps_are_far_smaller_than_plain(published_json, tmp_path):
    mlp = load_published(published_json)["Iris"].mlp
    area = {}
    for structure in ("plain", "bitheap"):
        path = tmp_path / f"{structure}.v"
        path.write_text(to_verilog(mlp, structure=structure))
        result = synthesize(path, top_name(mlp), tmp_path / structure)
        area[structure] = result.area_um2
        sim = NetlistSim(Netlist.from_yosys_json(result.netlist_json, top_name(mlp)))
        X = all_inputs(mlp)
        assert np.array_equal(sim.predict(X), mlp.predict(X))
    assert area["bitheap"] < 0.5 * area["plain"]


@needs_yosys
def test_choose_structure_keeps_the_smallest(tmp_path):
    mlp = IntMLP(2, [IntLayer([[7, -5, 3], [-3, 6, 2]], [4, -20], Activation.relu()),
                     IntLayer([[5, -3], [-2, 7], [1, 1]], [3, -6, 0], Activation.identity())])
    choice = choose_structure(mlp, tmp_path, ("bitheap", "plain"))
    assert set(choice.results) == {"bitheap", "plain"}
    assert choice.result.area_um2 == min(r.area_um2 for r in choice.results.values())
    assert choice.verilog == tmp_path / choice.structure / f"{top_name(mlp)}.v" and choice.verilog.is_file()
