"""The bit-heap hardware cost model: hand-counted heaps, the generator's own gates, dead logic,
calibration (fitting, the shipped default, a slow check against real synthesis)."""

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Signal
from hypothesis import given, settings
from hypothesis import strategies as st

from hwmlp.arith.bitheap import BitHeap
from hwmlp.arith.logic import Logic
from hwmlp.errors import HwmlpError
from hwmlp.intmlp import Activation, IntLayer, IntMLP, _max_and
from hwmlp.intmlp import bits_for_range as scalar_bits_for_range
from hwmlp.search.cost import (
    COMPONENT_GROUPS, COMPONENTS, DEFAULT_CALIBRATION, FEATURES, Calibration, CostModel, _compress, agreement,
    bit_length, bits_for_range, fit_calibration, max_and,
)
from hwmlp.search.genome import to_intmlp
from hwmlp.tech import EGFET_1V0
from search_helpers import populations

MODEL = CostModel(calibration=Calibration())  # the cells of COMPONENTS as they are
REPO = Path(__file__).resolve().parents[1]


def counts(mlp: IntMLP) -> dict:
    return {k: v for k, v in MODEL.of_mlp(mlp).breakdown(0).items() if v}


def single_layer(weights, biases, input_bits=2, activation=Activation.identity(), masks=None, drop=0) -> IntMLP:
    return IntMLP(input_bits, [IntLayer(weights, biases, activation, masks)], argmax_drop_bits=drop)


def test_two_bit_adder_is_a_half_and_a_full_adder():
    # out0 = x0 + x1 on 2-bit inputs: columns (2, 2); sum 0..6 is 3 bits wide.
    # out1 = 3: constant. Argmax: one 3-bit comparison with a constant, no multiplexer for 2 classes.
    mlp = single_layer([[1, 1], [0, 0]], [0, 3])
    assert counts(mlp) == {"full_adder": 1, "half_adder": 1, "const_comparator_bit": 3}


def test_negation_plus_constant_folds_into_inverted_bits():
    # 3 - x0 = ~x0 on 2 bits: one inverted bit per column and no constant left: two inverters, no adders.
    mlp = single_layer([[-1, 0], [0, 0]], [3, 2])
    assert counts(mlp) == {"inverted_bit": 2, "const_comparator_bit": 2}
    # the inverters of an input bit are shared by the neurons of a layer
    shared = single_layer([[-1, 0], [-1, 0], [0, 0]], [3, 3, 2])
    assert counts(shared)["inverted_bit"] == 2


def test_an_increment_uses_a_constant_half_adder():
    # x0 + 1: column 0 holds x0[0] and the constant 1 (an inverter), column 1 x0[1] + carry (a half adder).
    mlp = single_layer([[1, 0], [0, 0]], [1, 2])
    assert counts(mlp) == {"const_half_adder": 1, "half_adder": 1, "const_comparator_bit": 3}


def test_shift_add_of_csd_digits_and_masks():
    # 7 * (x0 & 0b10) = (2**3 - 2**0) * 2 * x0[1]: x0[1] lands in column 4 and, inverted, in
    # column 1 with the constant -2. The sum 0..14 is 4 bits wide: column 4 falls off and the
    # constant's bits 1110 meet the inverted bit and the carries: three constant half adders.
    mlp = single_layer([[7, 0], [0, 0]], [0, 5], masks=[[2, 0], [0, 0]])
    assert counts(mlp) == {"const_half_adder": 3, "inverted_bit": 1, "const_comparator_bit": 4}
    # a zero mask removes the product altogether, and with it the argmax (class 1 always wins)
    assert counts(single_layer([[7, 0], [0, 0]], [0, 5], masks=[[0, 0], [0, 0]])) == {}


def generator_gates(columns: list[int], constant: int, width: int, needed: set[int]) -> tuple[int, int]:
    """(NAND, NOT) gates of the generator's own heap (fresh input bits) that the needed
    sum bits depend on (synthesis removes the others)."""
    logic = Logic()
    heap = BitHeap(logic, width)
    for c, n in enumerate(columns):
        for _ in range(n):
            heap.add_bit(Signal(), c)
    heap.add_constant(constant)
    stack = [v for v in heap.sum_bits(needed) if v is not None and not isinstance(v, int)]
    gates = {id(out): (a, b) for out, a, b in logic._gates}
    seen, nand, inv = set(), 0, 0
    while stack:
        v = stack.pop()
        if id(v) in seen or id(v) not in gates:
            continue
        seen.add(id(v))
        a, b = gates[id(v)]
        nand, inv = nand + (b is not None), inv + (b is None)
        stack += [a] if b is None else [a, b]
    return nand, inv


def model_gates(adders: np.ndarray) -> tuple[int, int]:
    """(NAND, NOT) gates of the first :func:`_compress` components."""
    return tuple(int(sum(k * COMPONENTS[f].get(cell, 0) for f, k in zip(FEATURES, adders)))
                 for cell in ("NAND2X1", "INVX1"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=8), st.integers(-300, 300), st.integers(1, 9),
       st.integers(0, 2**9 - 1))
def test_heap_compression_counts_exactly_the_generators_nand_gates(columns, constant, width, needed):
    """The adders :func:`_compress` counts are the gates BitHeap.sum_bits builds and the
    needed sum bits use: every NAND, and never fewer inverters (it cannot see an inverter
    built once and reused)."""
    needed &= (1 << width) - 1
    adders = _compress(np.array([[columns]]), np.array([[constant]]), np.array([[width]]), np.array([[needed]]))[0, 0]
    nand, inv = generator_gates(columns, constant, width, {c for c in range(width) if needed >> c & 1})
    model_nand, model_inv = model_gates(adders)
    assert model_nand == nand and model_inv >= inv


def test_unread_sum_bits_compute_carries_only_and_dead_columns_cost_nothing():
    # columns (2, 3): bit 0 unread -> its two bits only make a carry (AND); column 1 is the
    # highest needed: sum only (one XOR of three bits: two XORs); nothing above it is built
    adders = _compress(np.array([[[2, 2]]]), np.array([[0]]), np.array([[6]]), np.array([[0b10]]))[0, 0]
    assert dict((f, int(k)) for f, k in zip(FEATURES, adders) if k) == {"top_full_adder": 1, "carry_half_adder": 1}
    # nothing needed: nothing built
    assert not _compress(np.array([[[5, 5]]]), np.array([[7]]), np.array([[6]]), np.array([[0]])).any()


def test_qrelu_logic_zeroes_negatives_and_saturates_overflow():
    # s = x0 - 2 in -2..13 (5 bits signed), QReLU [1:0]: negative -> 0, s >= 4 saturates.
    hidden = IntLayer([[1]], [-2], Activation.qrelu(1, 0))
    out = IntLayer([[1], [0]], [0, 1], Activation.identity())
    c = counts(IntMLP(4, [hidden, out]))
    assert c["relu_bit"] == 2 and c["saturate_bit"] == 2
    assert c["saturate_detect"] == 1  # sum bits 2 and 3 lie above the slice: one OR
    # only output bits the next layer's masks keep need the logic
    half_read = counts(IntMLP(4, [hidden, IntLayer([[1], [0]], [0, 1], Activation.identity(), [[2], [0]])]))
    assert half_read["relu_bit"] == 1 and half_read["saturate_bit"] == 1 and half_read["saturate_detect"] == 1


def test_sum_bits_below_the_qrelu_slice_only_make_carries():
    # s = x0 + x1 in 0..6 on 2-bit inputs, QReLU [2:1] = s >> 1 (never saturates, never negative):
    # column 0 is not needed, its two bits only make the carry (AND); column 1 adds three bits.
    hidden = IntLayer([[1, 1]], [0], Activation.qrelu(2, 1))
    mlp = IntMLP(2, [hidden, IntLayer([[1], [0]], [0, 1], Activation.identity())])
    assert counts(mlp) == {"carry_half_adder": 1, "full_adder": 1, "const_comparator_bit": 2}
    # a negative sum's sign gates the slice: its bits come out of NANDs, negating them is free
    negative = IntLayer([[1, 1]], [-1], Activation.qrelu(2, 1))
    c = counts(IntMLP(2, [negative, IntLayer([[-1], [0]], [0, -1], Activation.identity())]))
    assert c["relu_bit"] == 2 and "inverted_bit" not in c


def test_unread_and_constant_hidden_neurons_cost_nothing():
    heavy = [[7, 5, 3]]
    read = IntMLP(4, [IntLayer(heavy + [[0, 0, 0]], [0, 0], Activation.relu()),
                      IntLayer([[1, 0], [0, 1]], [0, 100], Activation.identity())])
    unread = IntMLP(4, [IntLayer(heavy + [[0, 0, 0]], [0, 0], Activation.relu()),
                        IntLayer([[0, 0], [0, 1]], [0, 0], Activation.identity())])
    never_positive = IntMLP(4, [IntLayer([[-7, -5, -3], [0, 0, 0]], [0, 0], Activation.relu()),
                                IntLayer([[1, 0], [0, 1]], [0, 0], Activation.identity())])
    assert counts(read)["full_adder"] > 0
    assert "full_adder" not in counts(unread) and "full_adder" not in counts(never_positive)


def test_dropped_argmax_bits_narrow_the_comparators():
    # x0 + x1 in 0..6 (3 bits) against x0 in 0..3 (2 bits; the comparison is not decided):
    # two full borrow cells, one against the zero extension
    assert counts(single_layer([[1, 1], [1, 0]], [0, 0], drop=0)) == {
        "full_adder": 1, "half_adder": 1, "comparator_bit": 2, "const_comparator_bit": 1}
    # one bit dropped: 2 bits against 1, and the sum's bit 0 only makes a carry
    assert counts(single_layer([[1, 1], [1, 0]], [0, 0], drop=1)) == {
        "full_adder": 1, "carry_half_adder": 1, "comparator_bit": 1, "const_comparator_bit": 1}
    # two bits dropped: 0..1 against 0..0 -- class 1 never wins, nothing is left
    assert counts(single_layer([[1, 1], [1, 0]], [0, 0], drop=2)) == {}


def test_argmax_tree_of_three_classes():
    # x0 (0..3) vs x1 (0..3): 2-bit comparator, the winner's value (2 bits) goes on, its index
    # is (NOT right, right): free. Root: winner (0..3) vs x0 + x1 (0..6): 2 full borrow cells and
    # one against the zero extension; index bit 0 is chosen between a signal and the constant 0,
    # bit 1 between the constants 0 and 1 (the select itself: free).
    c = counts(single_layer([[1, 0], [0, 1], [1, 1]], [0, 0, 0]))
    assert (c["comparator_bit"], c["const_comparator_bit"], c["mux_bit"], c["const_mux_bit"]) == (2 + 2, 1, 2, 1)


def test_decided_comparisons_fold_and_unread_outputs_cost_nothing():
    # out0 = x0 + x1 (0..6) never beats out1 = 10 + x0 (10..13): class 1 always wins, out0 is dead
    decided = single_layer([[1, 1], [1, 0]], [0, 10])
    assert counts(decided) == {}
    # out0 = x0 + x1 (0..6) against the constant 4 is a cheap comparison; the winner (4..6)
    # always beats out2 = x0 (0..3): the root folds away, so the winner's value is never used
    # (no multiplexer) and out2 is never read
    cheap = counts(single_layer([[1, 1], [0, 0], [1, 0]], [0, 4, 0]))
    assert cheap == {"full_adder": 1, "half_adder": 1, "const_comparator_bit": 3}


@settings(max_examples=60, deadline=None)
@given(populations())
def test_genome_costs_equal_the_costs_of_their_integer_models(space_genomes):
    space, genomes = space_genomes
    report = MODEL.of_genomes(genomes, space)
    for k, g in enumerate(genomes):
        mlp_report = MODEL.of_mlp(to_intmlp(g, space))
        np.testing.assert_array_equal(report.counts[k], mlp_report.counts[0])
        assert report.area_um2[k] == pytest.approx(mlp_report.area_um2[0])


def test_area_and_leakage_come_from_the_cells():
    nand, inv = EGFET_1V0.cell("NAND2X1"), EGFET_1V0.cell("INVX1")
    assert MODEL.unit_area_um2[FEATURES.index("full_adder")] == 9 * nand.area_um2
    assert MODEL.unit_leakage_nW[FEATURES.index("half_adder")] == pytest.approx(4 * nand.leakage_nW + inv.leakage_nW)
    report = MODEL.of_mlp(single_layer([[1, 1], [0, 0]], [0, 3]))
    assert report.area_um2[0] == pytest.approx(report.counts[0] @ MODEL.unit_area_um2)
    assert report.area_cm2[0] == report.area_um2[0] / 1e8
    assert report.power_mW[0] == report.leakage_nW[0] / 1e6
    assert set(FEATURES) == set(COMPONENTS)


def test_calibration_scales_components():
    mlp = single_layer([[1, 1], [0, 0]], [0, 3])
    scaled = CostModel(calibration=Calibration({"full_adder": 2.0}))
    base, more = MODEL.of_mlp(mlp), scaled.of_mlp(mlp)
    assert more.area_um2[0] - base.area_um2[0] == pytest.approx(MODEL.unit_area_um2[FEATURES.index("full_adder")])
    assert more.leakage_nW[0] == base.leakage_nW[0]
    assert Calibration.from_dict(scaled.calibration.to_dict()) == scaled.calibration
    with pytest.raises(HwmlpError):
        Calibration({"adder": 1.0})
    with pytest.raises(HwmlpError):
        Calibration({"full_adder": -1.0})


def test_fit_calibration_recovers_known_scales():
    rng = np.random.default_rng(0)
    counts_ = rng.integers(0, 50, size=(60, len(FEATURES))).astype(float)
    counts_[:, FEATURES.index("saturate_detect")] = 0  # never seen: keeps scale 1
    truth = rng.uniform(0.5, 1.5, size=len(FEATURES))
    area = counts_ @ (MODEL.unit_area_um2 * truth)
    cal = fit_calibration(counts_, area)
    fitted = np.array([cal.area_scale[n] for n in FEATURES])
    seen = np.array([n != "saturate_detect" for n in FEATURES])
    np.testing.assert_allclose(fitted[seen], truth[seen], rtol=1e-4)
    assert cal.area_scale["saturate_detect"] == 1.0 and cal.leakage_scale == cal.area_scale
    assert cal.technology == EGFET_1V0.name
    predicted = CostModel(calibration=cal).report(counts_).area_um2
    assert agreement(predicted, area)["median_relative_error"] < 1e-4
    one = dict.fromkeys(FEATURES, "all")
    single = fit_calibration(counts_, 2.0 * counts_ @ MODEL.unit_area_um2, groups=one)
    assert list(single.area_scale.values()) == pytest.approx([2.0] * len(FEATURES))
    with pytest.raises(HwmlpError, match="every component"):
        fit_calibration(counts_, area, groups={"full_adder": "heap"})


def test_grouped_fit_shares_one_scale_per_group():
    rng = np.random.default_rng(1)
    counts_ = rng.integers(0, 50, size=(40, len(FEATURES))).astype(float)
    group_truth = {"heap": 0.9, "activation": 1.3, "argmax": 0.7}
    truth = np.array([group_truth[COMPONENT_GROUPS[f]] for f in FEATURES])
    cal = fit_calibration(counts_, counts_ @ (MODEL.unit_area_um2 * truth), groups=COMPONENT_GROUPS)
    assert [cal.area_scale[f] for f in FEATURES] == pytest.approx(truth.tolist(), rel=1e-4)


def test_fit_is_robust_to_designs_synthesis_shrinks_far_more():
    """A fifth of the designs synthesize to a fifth of their modelled area (logic the
    model cannot prove redundant): the least-absolute-log-ratio fit still finds the scale
    of the others, where relative errors (least squares or absolute) are dragged down."""
    rng = np.random.default_rng(2)
    counts_ = rng.integers(1, 50, size=(50, len(FEATURES))).astype(float)
    area = 0.8 * counts_ @ MODEL.unit_area_um2
    area[::5] /= 5
    cal = fit_calibration(counts_, area, groups=dict.fromkeys(FEATURES, "all"))
    assert cal.area_scale["full_adder"] == pytest.approx(0.8, rel=1e-3)


def test_agreement_reports_rank_correlation_and_median_error():
    a = agreement([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 4.0, 3.0])
    assert a["spearman"] == pytest.approx(0.8)
    assert a["median_relative_error"] == pytest.approx(0.125)


def test_integer_helpers_match_python():
    values = np.array([0, 1, 2, 3, 255, 256, 2**40 + 5, 2**62 - 1])
    np.testing.assert_array_equal(bit_length(values), [int(v).bit_length() for v in values])
    his, masks = np.meshgrid(np.arange(70), np.arange(70), indexing="ij")
    expected = [[_max_and(hi, mask) for mask in range(70)] for hi in range(70)]
    np.testing.assert_array_equal(max_and(his, masks), expected)
    for lo, hi in [(0, 0), (0, 7), (3, 9), (-1, 0), (-8, 7), (-9, 7), (-1, 200), (-300, -5)]:
        assert bits_for_range(np.array(lo), np.array(hi)) == scalar_bits_for_range(lo, hi)


def test_the_shipped_calibration_is_the_default():
    """CostModel() uses hwmlp/search/calibration.json, fitted by the calibration bench on
    enough designs to meet its targets on the designs held out of the fit."""
    record = json.loads(DEFAULT_CALIBRATION.read_text())
    assert record["command"].startswith("python bench/calibrate_cost.py") and "--write-calibration" in record["command"]
    assert record["designs"] >= 50 and len(record["datasets"]) >= 3
    held_out = record["agreement"]["held_out"]["area_um2"]
    assert held_out["spearman"] >= 0.95 and held_out["median_relative_error"] <= 0.10
    default = Calibration.default()
    assert default == Calibration.load(DEFAULT_CALIBRATION) and default.technology == EGFET_1V0.name
    assert CostModel().calibration == default
    assert any(v != 1.0 for v in default.area_scale.values())  # really fitted
    # the package ships the file (setuptools package data)
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert DEFAULT_CALIBRATION.name in package_data["hwmlp.search"]


def test_calibrations_belong_to_their_technology(tmp_path):
    other = replace(EGFET_1V0, name="OTHER")
    assert CostModel(tech=other).calibration == Calibration()  # the default fits EGFET only
    with pytest.raises(HwmlpError, match="fitted for EGFET"):
        CostModel(tech=other, calibration=Calibration.default())
    broken = tmp_path / "cal.json"
    broken.write_text(json.dumps({"area_scale": {}}))
    with pytest.raises(HwmlpError, match="not an hwmlp.cost-calibration file"):
        Calibration.load(broken)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_calibrated_model_predicts_synthesis_of_published_models(published_json, tmp_path):
    """Three published exact MLPs (never part of the calibration set) through the bitheap
    generator and Yosys+ABC: the calibrated model is within 25% of their area and leakage."""
    from hwmlp.reference import load_published
    from hwmlp.rtl import to_verilog
    from hwmlp.synth import synthesize

    models = load_published(published_json)
    model = CostModel()
    for name in ("Vertebral_Column_3C", "Energy2", "Balance_Scale"):
        mlp = models[name].mlp
        (tmp_path / f"{name}.v").write_text(to_verilog(mlp, name="top"))
        synthesized = synthesize(tmp_path / f"{name}.v", "top", tmp_path / name)
        report = model.of_mlp(mlp)
        assert report.area_um2[0] == pytest.approx(synthesized.area_um2, rel=0.25), name
        assert report.power_mW[0] == pytest.approx(synthesized.leakage_mW, rel=0.25), name


def test_identity_hidden_layers_are_refused():
    mlp = IntMLP(2, [IntLayer([[1]], [0], Activation.identity()), IntLayer([[1], [2]], [0, 0], Activation.identity())])
    with pytest.raises(HwmlpError, match="ReLU or QReLU"):
        MODEL.of_mlp(mlp)
