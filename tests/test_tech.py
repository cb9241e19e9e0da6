"""The project's technology description agrees with the EGFET 1.0 V Liberty library.

The library files are reference copies outside the repository
(``../shared/pdk/egfet``); the comparisons are skipped when they are absent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from statistics import mean

import numpy as np
import pytest

from hwmlp.errors import HwmlpError
from hwmlp.tech import EGFET_1V0, PRINTED_BATTERIES, batteries_for, compile_function

PDK = Path(__file__).resolve().parents[2] / "shared/pdk/egfet"
LIB_1V0 = PDK / "PPDK_Standard_Library_1.0V_25C_TYP_X1.lib"

#: Relative tolerance on delays and energies (the project keeps rounded means).
TOLERANCE = 1e-3


# ----- a small Liberty reader -----------------------------------------------------


@dataclass
class Group:
    """A Liberty group ``kind (args) { attrs; groups }``."""

    kind: str
    args: list
    attrs: dict = field(default_factory=dict)
    groups: list = field(default_factory=list)

    def sub(self, kind: str) -> list["Group"]:
        return [g for g in self.groups if g.kind == kind]


_TOKEN = re.compile(r'\s+|/\*.*?\*/|\\\n|"([^"]*)"|([^\s(){}:;,"]+)|([(){}:;,])', re.S)


def read_liberty(text: str) -> Group:
    """Parse Liberty text into its top ``library`` group (enough for cell figures)."""
    tokens, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        assert m, f"unexpected text at {pos}: {text[pos:pos + 30]!r}"
        pos = m.end()
        if m.group(1) is not None:
            tokens.append(("str", m.group(1)))
        elif m.group(2) is not None:
            tokens.append(("word", m.group(2)))
        elif m.group(3) is not None:
            tokens.append(("punct", m.group(3)))
    tokens.append(("punct", "}"))
    i = 0

    def body(group: Group) -> None:
        nonlocal i
        while tokens[i][1] != "}" or tokens[i][0] == "str":
            name = tokens[i][1]
            i += 1
            if tokens[i][1] == ":":
                group.attrs[name] = tokens[i + 1][1]
                i += 3 if tokens[i + 2][1] == ";" else 2
                continue
            assert tokens[i][1] == "(", f"expected '(' after {name}"
            i += 1
            args = []
            while tokens[i][1] != ")":
                if tokens[i][1] != ",":
                    args.append(tokens[i][1])
                i += 1
            i += 1
            if tokens[i][1] == "{":
                i += 1
                child = Group(name, args)
                body(child)
                group.groups.append(child)
            else:
                group.attrs.setdefault(name, args)
                if tokens[i][1] == ";":
                    i += 1
        i += 1

    top = Group("file", [])
    body(top)
    return top.sub("library")[0]


def middle(table: Group) -> float:
    """Value at the middle point of a 3x3 table."""
    return float(table.attrs["values"][1].split(",")[1])


def liberty_truth_table(function: str, pins: tuple[str, ...]) -> tuple[bool, ...]:
    """Truth table of a Liberty function, rows as ``itertools.product([0, 1], ...)``."""
    expr = re.sub(r"[A-Za-z_]\w*", lambda m: f"v[{m.group(0)!r}]", function)
    expr = expr.replace("!", " not ").replace("*", " and ").replace("+", " or ")
    return tuple(
        bool(eval(expr, {}, {"v": dict(zip(pins, row))}))  # noqa: S307 - test-only, library text
        for row in product([False, True], repeat=len(pins))
    )


@pytest.fixture(scope="module")
def liberty_cells() -> dict[str, Group]:
    if not LIB_1V0.is_file():
        pytest.skip(f"EGFET reference library not present at {LIB_1V0}")
    lib = read_liberty(LIB_1V0.read_text())
    assert lib.attrs["time_unit"] == "1ns" and lib.attrs["leakage_power_unit"] == "1nW"
    assert lib.attrs["capacitive_load_unit"] == ["1", "pf"]
    assert float(lib.attrs["nom_voltage"]) == EGFET_1V0.vdd_V
    return {c.args[0]: c for c in lib.sub("cell")}


LIBRARY_CELLS = [c for c in EGFET_1V0.cells if c.composite is None]


def test_every_library_cell_is_described():
    names = {c.name for c in LIBRARY_CELLS}
    assert names == {"INVX1", "NAND2X1", "NOR2X1", "AND2X1", "OR2X1", "XOR2X1", "XNOR2X1"}


@pytest.mark.parametrize("cell", LIBRARY_CELLS, ids=lambda c: c.name)
def test_cell_matches_liberty(cell, liberty_cells):
    lib = liberty_cells[cell.name]
    assert float(lib.attrs["area"]) == cell.area_um2
    assert float(lib.attrs["cell_leakage_power"]) == cell.leakage_nW

    pins = {p.args[0]: p for p in lib.sub("pin")}
    out = pins.pop(cell.output)
    assert out.attrs["direction"] == "output"
    assert tuple(pins) == cell.inputs
    assert liberty_truth_table(out.attrs["function"], cell.inputs) == cell.truth_table

    for pin in cell.pins:
        assert float(pins[pin.name].attrs["capacitance"]) == pin.capacitance_pF
        delays = [
            middle(t)
            for arc in out.sub("timing")
            if arc.attrs["related_pin"] == pin.name
            for t in arc.groups
            if t.kind in ("cell_rise", "cell_fall")
        ]
        assert pin.delay_ns == pytest.approx(mean(delays), rel=TOLERANCE)

    vdd_energy = [
        (middle(arc.sub("rise_power")[0]) + middle(arc.sub("fall_power")[0])) / 2
        for arc in out.sub("internal_power")
        if arc.attrs["related_pg_pin"] == "VDD"
    ]
    assert cell.internal_energy_pJ == pytest.approx(mean(vdd_energy), rel=TOLERANCE)


def test_buffer_is_two_inverters():
    inv, buf = EGFET_1V0.cell("INVX1"), EGFET_1V0.cell("BUF")
    assert buf.composite
    assert buf.truth_table == (False, True)
    assert buf.area_um2 == 2 * inv.area_um2
    assert buf.leakage_nW == 2 * inv.leakage_nW
    assert buf.internal_energy_pJ == 2 * inv.internal_energy_pJ
    assert buf.pin("A").delay_ns == 2 * inv.pin("A").delay_ns
    assert buf.pin("A").capacitance_pF == inv.pin("A").capacitance_pF


def test_truth_tables_and_phases():
    t = {c.name: c.truth_table for c in EGFET_1V0.cells}
    assert t["NAND2X1"] == (True, True, True, False)
    assert t["NOR2X1"] == (True, False, False, False)
    assert t["XOR2X1"] == (False, True, True, False)
    assert t["XNOR2X1"] == (True, False, False, True)
    nand, and2, xor = (EGFET_1V0.cell(n) for n in ("NAND2X1", "AND2X1", "XOR2X1"))
    assert nand.phase("A2") == "INV" and and2.phase("A1") == "NONINV" and xor.phase("A1") == "UNKNOWN"


def test_cells_evaluate_bitwise_on_words():
    a = np.array([0b1100], dtype=np.uint64)
    b = np.array([0b1010], dtype=np.uint64)
    xor = EGFET_1V0.cell("XOR2X1").evaluate({"A1": a, "A2": b})
    nand = EGFET_1V0.cell("NAND2X1").evaluate({"A1": a, "A2": b})
    assert int(xor[0]) == 0b0110
    assert int(nand[0]) & 0b1111 == 0b0111


@pytest.mark.parametrize("expr", ["A1 *", "(A1 + A2", "A1 ^ A2", "A3", "A1 A2"])
def test_bad_cell_function_is_refused(expr):
    with pytest.raises(HwmlpError, match="cell function"):
        compile_function(expr, ("A1", "A2"))


def test_genlib_lists_every_cell_and_the_constants():
    lines = EGFET_1V0.genlib().splitlines()
    gates = {ln.split()[1]: ln for ln in lines if ln.startswith("GATE ")}
    assert set(gates) == {*EGFET_1V0.cell_names, "ZERO", "ONE"}
    assert gates["NAND2X1"].startswith("GATE NAND2X1 247860 Y=!(A1*A2); PIN A1 INV 93.1805 ")
    assert gates["BUF"].startswith("GATE BUF 456840 Y=A; PIN A NONINV")
    assert gates["ZERO"] == "GATE ZERO 0 Y=CONST0;"


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_verilog_models_match_truth_tables(tmp_path):
    """Simulate every cell model on every input combination with Icarus Verilog."""
    lines = ["module tb;"]
    for k, cell in enumerate(EGFET_1V0.cells):
        n = len(cell.inputs)
        lines.append(f"  reg [{n - 1}:0] in{k}; wire out{k};")
        conns = ", ".join(f".{p}(in{k}[{n - 1 - j}])" for j, p in enumerate(cell.inputs))
        lines.append(f"  {cell.name} u{k}({conns}, .Y(out{k}));")
    lines.append("  integer r;\n  initial begin")
    for k, cell in enumerate(EGFET_1V0.cells):
        n = len(cell.inputs)
        lines.append(
            f'    for (r = 0; r < {2**n}; r = r + 1) begin in{k} = r; #1 $write("%b", out{k}); end'
        )
        lines.append('    $write("\\n");')
    lines.append("  end\nendmodule")
    (tmp_path / "models.v").write_text(EGFET_1V0.verilog_models())
    (tmp_path / "tb.v").write_text("\n".join(lines) + "\n")
    subprocess.run(
        ["iverilog", "-o", str(tmp_path / "sim"), str(tmp_path / "models.v"), str(tmp_path / "tb.v")],
        check=True,
    )
    run = subprocess.run(["vvp", "-n", str(tmp_path / "sim")], check=True, capture_output=True, text=True)
    rows = run.stdout.split()
    assert rows == ["".join("1" if v else "0" for v in c.truth_table) for c in EGFET_1V0.cells]


def test_switching_energy():
    assert EGFET_1V0.switching_energy_pJ(100.0) == pytest.approx(50.0)  # C V^2 / 2 at 1 V


def test_battery_budgets():
    assert [b.name for b in PRINTED_BATTERIES] == ["Blue Spark", "Zinergy", "Molex"]
    assert [b.power_mW for b in PRINTED_BATTERIES] == [3.0, 15.0, 30.0]
    assert batteries_for(3.0) == ["Blue Spark", "Zinergy", "Molex"]
    assert batteries_for(12.1) == ["Zinergy", "Molex"]
    assert batteries_for(29.9) == ["Molex"]
    assert batteries_for(30.01) == []
