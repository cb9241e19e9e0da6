"""Synthesis with Yosys + ABC, and the analyses of the mapped netlist.

The synthesized circuit is checked against the golden model on every input;
static timing, simulation and power are checked by hand on tiny netlists.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil

import numpy as np
import pytest

from hwmlp import IntLayer, IntMLP
from hwmlp.errors import HwmlpError, ToolMissingError
from hwmlp.rtl import to_verilog, top_name
from hwmlp.synth import (
    DEFAULT_ACTIVITY_VECTORS,
    Netlist,
    NetlistSim,
    feature_bits,
    synthesize,
)
from hwmlp.tech import EGFET_1V0

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")

INV = EGFET_1V0.cell("INVX1")
NAND = EGFET_1V0.cell("NAND2X1")


def tiny_mlp() -> IntMLP:
    """3 features x 3 bits -> 2 hidden -> 3 classes; every class occurs over the 512 inputs."""
    return IntMLP(
        3,
        [
            IntLayer([[3, -2, 1], [-1, 4, -3]], [2, -1]),
            IntLayer([[2, -1], [-1, 3], [-1, -1]], [0, -2, 6]),
        ],
        name="tiny",
    )


ALL_INPUTS = np.array(list(itertools.product(range(8), repeat=3)))


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed")
    mlp = tiny_mlp()
    work = tmp_path_factory.mktemp("synth")
    rtl = work / "tiny.v"
    rtl.write_text(to_verilog(mlp))
    result = synthesize(rtl, top_name(mlp), work / "out", vectors=ALL_INPUTS)
    return mlp, result


# ----- the synthesized MLP ------------------------------------------------------------


@needs_yosys
def test_netlist_computes_the_golden_model_on_every_input(synthesized):
    mlp, result = synthesized
    assert len(set(mlp.predict(ALL_INPUTS))) == 3
    sim = NetlistSim(Netlist.from_yosys_json(result.netlist_json, result.top))
    assert np.array_equal(sim.predict(ALL_INPUTS), mlp.predict(ALL_INPUTS))


@needs_yosys
def test_only_technology_cells_are_instantiated(synthesized):
    _, result = synthesized
    assert result.cells and set(result.cells) <= set(EGFET_1V0.cell_names)
    module = json.loads(result.netlist_json.read_text())["modules"][result.top]
    assert {c["type"] for c in module["cells"].values()} <= set(EGFET_1V0.cell_names)
    instantiated = set(re.findall(r"^\s*(\w+) \S+ \($", result.netlist_verilog.read_text(), re.M))
    assert instantiated == set(result.cells)
    assert "read_library" in result.log.read_text()  # ABC loaded the genlib


@needs_yosys
def test_area_leakage_and_power_add_up(synthesized):
    _, result = synthesized
    cells = {EGFET_1V0.cell(n): k for n, k in result.cells.items()}
    assert result.area_um2 == pytest.approx(sum(c.area_um2 * k for c, k in cells.items()))
    assert result.area_cm2 == pytest.approx(result.area_um2 / 1e8)
    assert result.leakage_mW == pytest.approx(sum(c.leakage_nW * k for c, k in cells.items()) * 1e-6)
    assert result.dynamic_mW > 0
    assert result.power_mW == pytest.approx(result.leakage_mW + result.dynamic_mW)
    assert result.activity_vectors == len(ALL_INPUTS)
    d = result.to_dict()
    json.dumps(d)
    assert d["power_mW"] == result.power_mW and d["area_cm2"] == result.area_cm2


@needs_yosys
def test_delay_and_default_evaluation_rate(synthesized):
    _, result = synthesized
    netlist = Netlist.from_yosys_json(result.netlist_json, result.top)
    assert result.delay_ns > 0
    assert result.delay_ns == netlist.critical_path_ns()
    assert result.evaluation_rate_hz == pytest.approx(1e9 / result.delay_ns)


@needs_yosys
def test_default_activity_uses_seeded_random_vectors(synthesized, tmp_path):
    mlp, first = synthesized
    rtl = tmp_path / "tiny.v"
    rtl.write_text(to_verilog(mlp))
    a = synthesize(rtl, top_name(mlp), tmp_path / "a", evaluation_rate_hz=2.0)
    assert a.activity_vectors == DEFAULT_ACTIVITY_VECTORS
    assert a.evaluation_rate_hz == 2.0
    assert a.cells == first.cells
    netlist = Netlist.from_yosys_json(a.netlist_json)
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(DEFAULT_ACTIVITY_VECTORS, netlist.port_width("x")), dtype=np.uint8)
    rates = NetlistSim(netlist).run({"x": bits}).toggle_rates()
    assert a.dynamic_mW == pytest.approx(netlist.dynamic_power_mW(rates, 2.0))


@needs_yosys
def test_yosys_failure_is_one_line_with_the_log_tail(tmp_path):
    bad = tmp_path / "bad.v"
    bad.write_text("module broken(input a, output y);\n  assign y = a +;\nendmodule\n")
    with pytest.raises(HwmlpError) as err:
        synthesize(bad, "broken", tmp_path / "out")
    message = str(err.value)
    assert "yosys failed" in message and "ERROR" in message and "\n" not in message


def test_missing_yosys_names_the_fix(tmp_path, monkeypatch):
    rtl = tmp_path / "tiny.v"
    rtl.write_text("module t(input a, output y); assign y = a; endmodule\n")
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolMissingError, match="yosys") as err:
        synthesize(rtl, "t", tmp_path / "out")
    assert "apt-get install yosys" in str(err.value)


def test_bad_arguments_are_refused_before_running_yosys(tmp_path):
    with pytest.raises(HwmlpError, match="not found"):
        synthesize(tmp_path / "absent.v", "t", tmp_path / "out")
    rtl = tmp_path / "t.v"
    rtl.write_text("module t(input a, output y); assign y = a; endmodule\n")
    with pytest.raises(HwmlpError, match="identifier"):
        synthesize(rtl, "t; shell", tmp_path / "out")
    with pytest.raises(HwmlpError, match="positive"):
        synthesize(rtl, "t", tmp_path / "out", evaluation_rate_hz=0)
    assert not (tmp_path / "out").exists()


# ----- hand-written netlists: timing, simulation, power ------------------------------


def yosys_json(cells: dict, ports: dict) -> dict:
    """A Yosys ``write_json`` document with one module ``top``."""
    return {
        "modules": {
            "top": {
                "ports": {n: {"direction": d, "bits": b} for n, (d, b) in ports.items()},
                "cells": {n: {"type": t, "connections": c} for n, (t, c) in cells.items()},
            }
        }
    }


def inverter_chain() -> Netlist:
    """x(2) -> INV -> 3 -> INV -> 4 -> INV -> y(5); cells listed out of order on purpose."""
    return Netlist.from_yosys_json(
        yosys_json(
            {
                "i3": ("INVX1", {"A": [4], "Y": [5]}),
                "i1": ("INVX1", {"A": [2], "Y": [3]}),
                "i2": ("INVX1", {"A": [3], "Y": [4]}),
            },
            {"x": ("input", [2]), "y": ("output", [5])},
        )
    )


def test_critical_path_of_an_inverter_chain():
    assert inverter_chain().critical_path_ns() == pytest.approx(3 * INV.pin("A").delay_ns)
    assert 3 * INV.pin("A").delay_ns == pytest.approx(1_804_635.45)


def test_critical_path_takes_the_slowest_pin():
    """y = NAND(A1 = INV(INV(a)), A2 = b): two paths, A2 is the slow pin of NAND2X1."""
    netlist = Netlist.from_yosys_json(
        yosys_json(
            {
                "n": ("NAND2X1", {"A1": [5], "A2": [3], "Y": [6]}),
                "i1": ("INVX1", {"A": [2], "Y": [4]}),
                "i2": ("INVX1", {"A": [4], "Y": [5]}),
            },
            {"x": ("input", [2, 3]), "y": ("output", [6, "0"])},
        )
    )
    via_a1 = 2 * 601545.15 + 1167054.0
    via_a2 = 1507760.0
    assert netlist.critical_path_ns() == pytest.approx(max(via_a1, via_a2))
    assert netlist.levels == [1, 2, 3]
    y = NetlistSim(netlist).run({"x": np.array([[0, 0], [1, 0], [0, 1], [1, 1]])}).value("y")
    assert y.tolist() == [1, 1, 1, 0]  # NAND(a, b), bit 1 tied to 0


def test_simulation_and_dynamic_power_of_an_inverter_chain():
    netlist = inverter_chain()
    sim = NetlistSim(netlist).run({"x": np.array([[0], [1], [0], [1], [0]])})
    assert sim.value("y").tolist() == [1, 0, 1, 0, 1]
    rates = sim.toggle_rates()
    assert rates[[2, 3, 4, 5]].tolist() == [1.0, 1.0, 1.0, 1.0]
    # per classification: 3 cell outputs switch (internal energy), 3 inverter inputs are charged
    pJ = 3 * INV.internal_energy_pJ + 3 * 0.5 * INV.pin("A").capacitance_pF * EGFET_1V0.vdd_V**2
    assert netlist.dynamic_power_mW(rates, 10.0) == pytest.approx(pJ * 10.0 * 1e-9)
    assert netlist.area_um2() == 3 * INV.area_um2
    assert netlist.leakage_nW() == pytest.approx(3 * INV.leakage_nW)


def test_toggle_rates_across_word_boundaries():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 2, size=(130, 1))
    sim = NetlistSim(inverter_chain()).run({"x": x})
    expected = np.count_nonzero(np.diff(x[:, 0])) / 129
    assert sim.toggle_rates()[[2, 5]] == pytest.approx([expected, expected])
    assert sim.bits("y")[:, 0].tolist() == (1 - x[:, 0]).astype(bool).tolist()


def test_feature_bits_pack_lsb_first():
    bits = feature_bits(np.array([[1, 2, 7]]), 9)
    assert bits.astype(int).tolist() == [[1, 0, 0, 0, 1, 0, 1, 1, 1]]
    with pytest.raises(HwmlpError, match="0..7"):
        feature_bits(np.array([[8, 0, 0]]), 9)
    with pytest.raises(HwmlpError, match="divide"):
        feature_bits(np.array([[1, 2]]), 9)


def test_netlist_refuses_loops_and_foreign_cells():
    loop = yosys_json(
        {"a": ("INVX1", {"A": [3], "Y": [4]}), "b": ("INVX1", {"A": [4], "Y": [3]})},
        {"y": ("output", [4])},
    )
    with pytest.raises(HwmlpError, match="loop"):
        Netlist.from_yosys_json(loop)
    foreign = yosys_json({"a": ("DFFX1", {"D": [2], "Q": [3]})}, {"x": ("input", [2])})
    with pytest.raises(HwmlpError, match="not in technology"):
        Netlist.from_yosys_json(foreign)
