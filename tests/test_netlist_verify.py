"""Every mapped netlist equals its model: gate-level cocotb simulation against the
IntMLP and a formal equivalence proof against the RTL (Yosys miter + ABC).

The failing cases use a netlist with one NAND2X1 turned into a NOR2X1 at a place
where that changes the circuit's class on some input (checked independently with
:class:`hwmlp.synth.NetlistSim` on every input).
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from hwmlp import IntLayer, IntMLP
from hwmlp.equiv import prove_equivalent
from hwmlp.errors import HwmlpError, ToolMissingError
from hwmlp.rtl import to_verilog, top_name
from hwmlp.synth import Netlist, NetlistSim, synthesize
from hwmlp.verify import verification_vectors, verify, verify_netlist
from mlp_strategies import small_mlps

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(
    shutil.which("yosys") is None or shutil.which("yosys-abc") is None, reason="yosys not installed"
)


def random_mlp(seed: int = 27) -> IntMLP:
    """A seeded random model: 3 features x 3 bits (512 inputs) -> 3 hidden -> 3 classes."""
    rng = np.random.default_rng(seed)
    return IntMLP(
        3,
        [
            IntLayer(rng.integers(-8, 9, (3, 3)), rng.integers(-10, 11, 3)),
            IntLayer(rng.integers(-8, 9, (3, 3)), rng.integers(-10, 11, 3)),
        ],
        name="random",
    )


def synthesized(mlp: IntMLP, work: Path):
    """(RTL path, synthesis result) of ``mlp`` under ``work``."""
    rtl = work / f"{top_name(mlp)}.v"
    rtl.parent.mkdir(parents=True, exist_ok=True)
    rtl.write_text(to_verilog(mlp))
    return rtl, synthesize(rtl, top_name(mlp), work / "synth")


def features(x: int, mlp: IntMLP) -> list[int]:
    """The feature vector packed into the input port value ``x`` (feature 0 in the low bits)."""
    return [(x >> (i * mlp.input_bits)) & mlp.input_max for i in range(mlp.n_inputs)]


def swap_cell(netlist_v: str, k: int) -> str:
    """``netlist_v`` with its ``k``-th NAND2X1 instance turned into a NOR2X1 (same pins)."""
    starts = [m.start(1) for m in re.finditer(r"^\s*(NAND2X1) \S+ \($", netlist_v, re.M)]
    s = starts[k]
    return netlist_v[:s] + "NOR2X1" + netlist_v[s + len("NAND2X1"):]


def read_netlist(netlist_v: Path, cells_v: Path, top: str) -> Netlist:
    """Parse a Verilog netlist through Yosys (cells as black boxes) into a :class:`Netlist`."""
    out = netlist_v.with_suffix(".json")
    subprocess.run(
        ["yosys", "-q", "-p", f"read_verilog -lib {cells_v}; read_verilog {netlist_v}; write_json {out}"],
        check=True,
    )
    return Netlist.from_yosys_json(out, top)


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """The random model, its exhaustive vectors, its RTL and its synthesis."""
    mlp = random_mlp()
    X = verification_vectors(mlp)
    assert len(X) == 512 and len(set(mlp.predict(X))) == 3
    rtl, syn = synthesized(mlp, tmp_path_factory.mktemp("good"))
    return mlp, X, rtl, syn


def function_changing_swap(mlp: IntMLP, X, syn, work: Path) -> tuple[Path, np.ndarray]:
    """(``work/netlist_<k>.v``: the netlist with its ``k``-th NAND2X1 turned into a NOR2X1,
    the classes that circuit gives on ``X``) for the first ``k`` that changes some class."""
    text = syn.netlist_verilog.read_text()
    for k in range(text.count("NAND2X1 ")):
        mutant = work / f"netlist_{k}.v"
        mutant.write_text(swap_cell(text, k))
        got = NetlistSim(read_netlist(mutant, syn.cell_models, syn.top)).predict(X)
        if (got != mlp.predict(X)).any():
            return mutant, got
    pytest.fail("no NAND2X1 -> NOR2X1 swap changes the circuit's function")


@pytest.fixture(scope="module")
def broken(good, tmp_path_factory):
    """The random model's netlist with one function-changing cell swap, and its classes."""
    mlp, X, _, syn = good
    return function_changing_swap(mlp, X, syn, tmp_path_factory.mktemp("broken"))


# ----- netlists that are right --------------------------------------------------------


def test_netlist_is_proven_equivalent_to_its_rtl(good, tmp_path):
    _, _, rtl, syn = good

    result = prove_equivalent(rtl, syn.netlist_verilog, syn.cell_models, syn.top, tmp_path)

    assert result.proven and result.status == "equivalent"
    assert result.counterexample is None
    assert result.seconds > 0 and result.log == tmp_path / "equiv.log"
    assert "UNSATISFIABLE" in result.log.read_text()
    assert json.loads(json.dumps(result.to_dict()))["proven"] is True


def test_gate_level_simulation_matches_the_model_on_every_input(good, tmp_path):
    mlp, X, _, syn = good

    result = verify(mlp, [syn.netlist_verilog, syn.cell_models], syn.top, X, tmp_path, "icarus")

    assert result.to_dict() == {"simulator": "icarus", "vectors": 512, "mismatches": 0, "first_mismatches": []}


def test_verify_netlist_does_both_and_passes(good, tmp_path):
    mlp, X, rtl, syn = good

    check = verify_netlist(mlp, rtl, syn, X, tmp_path, simulator="icarus")

    assert check.passed and check.failure() == ""
    assert check.gate_level.vectors == 512 and check.equivalence.proven
    assert (tmp_path / "gate_sim" / "icarus" / "run" / "result.json").is_file()
    assert (tmp_path / "equiv" / "equiv.log").is_file()
    assert check.to_dict()["passed"] is True


# ----- a netlist with one cell swapped ----------------------------------------------------


def test_swapped_cell_is_disproved_with_a_counterexample(good, broken, tmp_path):
    mlp, _, rtl, syn = good
    mutant, _ = broken

    result = prove_equivalent(rtl, mutant, syn.cell_models, syn.top, tmp_path)

    assert not result.proven and result.status == "different"
    assert set(result.counterexample) == {"x"}
    x = features(result.counterexample["x"], mlp)
    netlist = read_netlist(mutant, syn.cell_models, syn.top)
    assert NetlistSim(netlist).predict([x])[0] != mlp.predict(np.array([x]))[0]


def test_swapped_cell_gives_gate_level_mismatches(good, broken, tmp_path):
    mlp, X, rtl, syn = good
    mutant, got = broken
    expected = mlp.predict(X)
    wrong = np.flatnonzero(got != expected)

    result = verify(mlp, [mutant, syn.cell_models], syn.top, X, tmp_path, "icarus")

    assert result.mismatches == len(wrong) > 0
    assert result.first_mismatches[0] == {
        "vector": X[wrong[0]].tolist(), "expected": int(expected[wrong[0]]), "got": int(got[wrong[0]])
    }


def test_verify_netlist_reports_both_failures(good, broken, tmp_path):
    mlp, X, rtl, syn = good
    mutant, _ = broken
    shutil.copy(mutant, tmp_path / "netlist.v")
    bad = dataclasses.replace(syn, netlist_verilog=tmp_path / "netlist.v")

    check = verify_netlist(mlp, rtl, bad, X, tmp_path, simulator="icarus")

    assert not check.passed
    assert "gate-level simulation mismatches" in check.failure()
    assert "not proven (different on input {'x': " in check.failure()


# ----- errors -------------------------------------------------------------------------------


def test_netlist_of_another_circuit_fails_naming_the_log(good, tmp_path):
    """Ports that differ (another model's 2-feature netlist) make Yosys's miter fail."""
    _, _, rtl, syn = good
    other = IntMLP(3, [IntLayer([[1, 2], [2, 1], [0, 3]], [0, 0, 1])], name="random")  # same top, x has 6 bits
    _, other_syn = synthesized(other, tmp_path / "other")
    log = tmp_path / "equiv" / "equiv.log"

    with pytest.raises(HwmlpError, match=r"miter of hwmlp_random \(ERROR: .*\bx\b.*\): see " + re.escape(str(log))):
        prove_equivalent(rtl, other_syn.netlist_verilog, syn.cell_models, syn.top, tmp_path / "equiv")


def test_proof_over_its_time_limit_is_undecided(good, tmp_path):
    _, _, rtl, syn = good

    result = prove_equivalent(rtl, syn.netlist_verilog, syn.cell_models, syn.top, tmp_path, time_limit_s=1e-6)

    assert result.status == "undecided" and not result.proven and result.counterexample is None
    assert "time limit" in result.log.read_text()


@pytest.mark.parametrize("missing", ["yosys", "yosys-abc"])
def test_missing_yosys_names_the_fix(good, tmp_path, monkeypatch, missing):
    _, _, rtl, syn = good
    real_which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == missing else real_which(name))

    with pytest.raises(ToolMissingError, match=f"^{missing} not found on PATH: .*apt-get install yosys"):
        prove_equivalent(rtl, syn.netlist_verilog, syn.cell_models, syn.top, tmp_path)


def test_bad_arguments_are_refused(good, tmp_path):
    mlp, _, rtl, syn = good
    with pytest.raises(HwmlpError, match="identifier"):
        prove_equivalent(rtl, syn.netlist_verilog, syn.cell_models, "t; shell", tmp_path)
    with pytest.raises(HwmlpError, match="cannot read Verilog file"):
        prove_equivalent(tmp_path / "absent.v", syn.netlist_verilog, syn.cell_models, syn.top, tmp_path)
    with pytest.raises(HwmlpError, match="no Verilog file"):
        verify(mlp, [], syn.top, [[0, 0, 0]], tmp_path)


# ----- the flow's synth stage -------------------------------------------------------------


@pytest.mark.slow
def test_synth_stage_verifies_each_netlist_and_stops_on_a_wrong_one(tmp_path, monkeypatch):
    """A tiny flow (Iris, 2-bit inputs: 256 vectors, Icarus): synth writes
    netlist_verification.json and the report shows it; a netlist with a swapped cell
    stops the stage with a one-line error."""
    import hwmlp.synth
    from hwmlp.flow import load_flow
    from hwmlp.pipeline import RunDir, stage_emit, stage_report, stage_synth, stage_train

    flow = tmp_path / "tiny.yaml"
    flow.write_text(
        "name: tiny\ndata: {dataset: iris, input_bits: 2}\nmodel: {hidden: [2], epochs: 100}\n"
        "designs: [{name: a, scheme: fixed, weight_bits: 4}]\nverify: {simulator: icarus}\n"
    )
    run = RunDir(tmp_path / "run")
    stage_train(load_flow(flow), run)
    stage_emit(run)

    stage_synth(run)

    record = json.loads((run.design_dir("a") / "netlist_verification.json").read_text())
    assert record["passed"] and record["equivalence"]["proven"]
    assert record["gate_level"]["vectors"] == 256 and record["gate_level"]["mismatches"] == 0
    report = stage_report(run)
    assert report["designs"][0]["netlist_verification"] == {
        "passed": True, "simulator": "icarus", "vectors": 256, "mismatches": 0,
        "proven": True, "equivalence": "equivalent",
    }
    header, row = (run.path("report.csv").read_text().splitlines()[k].split(",") for k in (0, 1))
    assert dict(zip(header, row))["gate_mismatches"] == "0" and dict(zip(header, row))["equivalent"] == "True"

    real_synthesize = hwmlp.synth.synthesize
    mlp = run.model("a")

    def synthesize_wrongly(*args, **kwargs):
        result = real_synthesize(*args, **kwargs)
        mutant, _ = function_changing_swap(mlp, verification_vectors(mlp), result, tmp_path)
        result.netlist_verilog.write_text(mutant.read_text())
        return result

    monkeypatch.setattr(hwmlp.synth, "synthesize", synthesize_wrongly)
    with pytest.raises(HwmlpError, match=r"^design a: the mapped netlist differs from its model: gate-level") as err:
        stage_synth(run)
    assert "\n" not in str(err.value) and "not proven (different on input" in str(err.value)
    assert stage_report(run)["designs"][0]["netlist_verification"]["passed"] is False


# ----- larger and random models (slow: Verilator builds, more synthesis) ---------------------


@pytest.mark.slow
@pytest.mark.parametrize("design", sorted(p.name for p in (REPO / "rtl" / "iris").iterdir()))
def test_reference_iris_netlists_are_verified(design, tmp_path):
    """The checked-in reference designs, exhaustively (65536 vectors) with Verilator."""
    d = REPO / "rtl" / "iris" / design
    mlp = IntMLP.load(d / "model.json")
    rtl = d / f"{top_name(mlp)}.v"
    syn = synthesize(rtl, top_name(mlp), tmp_path / "synth")

    check = verify_netlist(mlp, rtl, syn, verification_vectors(mlp), tmp_path, "verilator")

    assert check.gate_level.vectors == 65536
    assert check.passed, check.failure()


@pytest.mark.slow
@settings(max_examples=4, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mlp=small_mlps(max_input_bits=8))
def test_random_model_netlists_are_verified(mlp, tmp_path):
    rtl, syn = synthesized(mlp, tmp_path / "work")

    check = verify_netlist(mlp, rtl, syn, verification_vectors(mlp), tmp_path / "work", simulator="icarus")

    assert check.passed, check.failure()
