"""Technology description: the standard cells hwmlp maps to and their figures.

:data:`EGFET_1V0` is the printed EGFET standard-cell library at 1.0 V, 25 C,
typical corner (the library of the printed-ML literature), as figures the project
owns: nothing is read from a Liberty file at run time. ``tests/test_tech.py``
checks every figure against the Liberty file when a copy is present.

Units throughout: area um^2, leakage nW, delay ns, capacitance pF, energy pJ,
voltage V (pF * V^2 = pJ). Printed logic is slow and large: an inverter is
0.23 mm^2 and switches in about 0.6 ms.

Per cell the description keeps:

* its boolean ``function`` over its input pins (genlib/Liberty operators ``!``
  not, ``*`` and, ``+`` or, parentheses), output pin ``Y``;
* ``area_um2`` and ``leakage_nW`` (the Liberty ``cell_leakage_power``);
* per input pin, its capacitance and a representative pin-to-output delay: the
  mean of all ``cell_rise`` and ``cell_fall`` values of that pin's timing arcs
  at the middle point of the 3x3 tables (input transition 2000 ns, load 15000 pF);
* ``internal_energy_pJ``: mean energy drawn from VDD per output transition, i.e.
  the mean over the output's internal-power arcs related to VDD of
  ``(rise_power + fall_power) / 2`` at the middle table point. The load's
  ``C * V^2 / 2`` per transition comes on top (:meth:`Technology.switching_energy_pJ`).

The library has no buffer, which ABC needs, so :data:`EGFET_1V0` adds ``BUF``:
two ``INVX1`` in series (twice the area, leakage and internal energy, the sum of
the delays). Constant outputs need no cell (ABC's genlib constants ``ZERO`` and
``ONE`` are written for ABC; Yosys turns them into constant wires).

The module also carries the printed-battery budgets (:data:`PRINTED_BATTERIES`)
a design's power is compared with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import product
from typing import Callable, Mapping

import numpy as np

from .errors import HwmlpError


# ----- boolean functions ------------------------------------------------------

_EXPR_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(.))")


def compile_function(expr: str, pins: tuple[str, ...]) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    """Compile a genlib/Liberty boolean expression (``!``, ``*``, ``+``, parentheses;
    ``*`` binds tighter than ``+``) into a function of ``{pin: array}``.

    The function applies ``~``, ``&`` and ``|`` to its arguments, so it works
    bitwise on numpy integer words (64 evaluations per uint64) and on bool arrays.
    """
    tokens = [(m.group(1), m.group(2)) for m in _EXPR_TOKEN.finditer(expr.strip())]
    pos = 0

    def fail(why: str):
        raise HwmlpError(f"cell function {expr!r}: {why}")

    def peek():
        return tokens[pos] if pos < len(tokens) else (None, None)

    def parse_or():
        nonlocal pos
        terms = [parse_and()]
        while peek()[1] == "+":
            pos += 1
            terms.append(parse_and())
        if len(terms) == 1:
            return terms[0]
        return lambda env: _reduce(np.bitwise_or, [t(env) for t in terms])

    def parse_and():
        nonlocal pos
        factors = [parse_not()]
        while peek()[1] == "*":
            pos += 1
            factors.append(parse_not())
        if len(factors) == 1:
            return factors[0]
        return lambda env: _reduce(np.bitwise_and, [f(env) for f in factors])

    def parse_not():
        nonlocal pos
        name, op = peek()
        pos += 1
        if op == "!":
            inner = parse_not()
            return lambda env: ~inner(env)
        if op == "(":
            inner = parse_or()
            if peek()[1] != ")":
                fail("missing ')'")
            pos += 1
            return inner
        if name is None:
            fail(f"unexpected {op!r}")
        if name not in pins:
            fail(f"unknown pin {name!r} (pins: {', '.join(pins)})")
        return lambda env: env[name]

    fn = parse_or()
    if pos != len(tokens):
        fail(f"unexpected {tokens[pos][0] or tokens[pos][1]!r}")
    return fn


def _reduce(op, values):
    out = values[0]
    for v in values[1:]:
        out = op(out, v)
    return out


# ----- cells ------------------------------------------------------------------


@dataclass(frozen=True)
class Pin:
    """An input pin: its capacitance (pF) and representative delay to the output (ns)."""

    name: str
    capacitance_pF: float
    delay_ns: float


@dataclass(frozen=True)
class Cell:
    """A combinational standard cell with one output pin ``Y``.

    ``composite`` is None for a cell of the library, or a note saying how the
    cell is built from library cells (the figures are then derived, not measured).
    """

    name: str
    function: str
    pins: tuple[Pin, ...]
    area_um2: float
    leakage_nW: float
    internal_energy_pJ: float
    composite: str | None = None

    output = "Y"

    def __post_init__(self):
        object.__setattr__(self, "_fn", compile_function(self.function, self.inputs))

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.pins)

    def pin(self, name: str) -> Pin:
        for p in self.pins:
            if p.name == name:
                return p
        raise HwmlpError(f"cell {self.name} has no input pin {name!r}")

    def evaluate(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Output for ``{pin: value}``; bitwise, so uint64 words evaluate 64 cases at once."""
        return self._fn(inputs)

    @property
    def truth_table(self) -> tuple[bool, ...]:
        """Output for every input combination, pins ordered as :attr:`inputs`, the
        first pin the most significant (row ``k`` of ``itertools.product([0, 1], ...)``)."""
        rows = np.array(list(product([False, True], repeat=len(self.pins))), dtype=bool)
        out = self.evaluate({p: rows[:, k] for k, p in enumerate(self.inputs)})
        return tuple(bool(v) for v in out)

    def phase(self, pin: str) -> str:
        """Unateness of the output in ``pin``: ``INV``, ``NONINV`` or ``UNKNOWN`` (genlib terms)."""
        k = self.inputs.index(pin)
        table = self.truth_table
        n = len(self.pins)
        rises = falls = False
        for row in range(2**n):
            if not row >> (n - 1 - k) & 1:
                lo, hi = table[row], table[row | 1 << (n - 1 - k)]
                rises |= hi and not lo
                falls |= lo and not hi
        if rises and falls:
            return "UNKNOWN"
        return "INV" if falls else "NONINV"

    @property
    def verilog_expr(self) -> str:
        return self.function.replace("!", "~").replace("*", " & ").replace("+", " | ")


# ----- technology ---------------------------------------------------------------


@dataclass(frozen=True)
class Technology:
    """A cell library with its supply voltage (V)."""

    name: str
    vdd_V: float
    cells: tuple[Cell, ...]

    def __post_init__(self):
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise HwmlpError(f"technology {self.name}: duplicate cell names")

    @property
    def cell_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.cells)

    def cell(self, name: str) -> Cell:
        for c in self.cells:
            if c.name == name:
                return c
        raise HwmlpError(
            f"cell {name!r} is not in technology {self.name} (cells: {', '.join(self.cell_names)})"
        )

    def switching_energy_pJ(self, load_pF: float) -> float:
        """Mean energy per transition of a net with ``load_pF`` of load: ``C * V^2 / 2`` (pJ)."""
        return 0.5 * load_pF * self.vdd_V**2

    def genlib(self) -> str:
        """The library in ABC's genlib format (areas um^2, pin loads pF, delays ns),
        plus the constant gates ``ZERO`` and ``ONE`` (area 0) that ABC's mapper needs."""
        lines = [f"# {self.name}: written by hwmlp.tech (areas um^2, loads pF, delays ns)"]
        for c in self.cells:
            pins = " ".join(
                f"PIN {p.name} {c.phase(p.name)} {p.capacitance_pF:g} 999999 "
                f"{p.delay_ns:g} 0 {p.delay_ns:g} 0"
                for p in c.pins
            )
            lines.append(f"GATE {c.name} {c.area_um2:g} {c.output}={c.function}; {pins}")
        lines.append("GATE ZERO 0 Y=CONST0;")
        lines.append("GATE ONE 0 Y=CONST1;")
        return "\n".join(lines) + "\n"

    def verilog_models(self) -> str:
        """Behavioural Verilog, one module per cell, for gate-level simulation of netlists."""
        parts = [f"// {self.name} behavioural cell models, written by hwmlp.tech\n"]
        for c in self.cells:
            ports = ", ".join(f"input {p}" for p in c.inputs)
            parts.append(
                f"module {c.name}({ports}, output {c.output});\n"
                f"  assign {c.output} = {c.verilog_expr};\n"
                "endmodule\n"
            )
        return "\n".join(parts)


def _two_input(name, function, area, leakage, energy, a1, a2) -> Cell:
    """A two-input library cell; ``a1``/``a2`` are (capacitance pF, delay ns) of pins A1/A2."""
    return Cell(name, function, (Pin("A1", *a1), Pin("A2", *a2)), area, leakage, energy)


_INVX1 = Cell("INVX1", "!A", (Pin("A", 12912.5, 601545.15),), 228420, 9887.47, 6795.33)

#: EGFET 1.0 V, 25 C, typical (PPDK_Standard_Library_1.0V_25C_TYP_X1), plus BUF.
EGFET_1V0 = Technology(
    "EGFET 1.0V 25C TYP",
    1.0,
    (
        _INVX1,
        _two_input("NAND2X1", "!(A1*A2)", 247860, 4924.72, 20850.025,
                   (93.1805, 1167054.0), (94.2883, 1507760.0)),
        _two_input("NOR2X1", "!(A1+A2)", 399500, 14791.8, 20440.15,
                   (94.5389, 1265753.5), (94.5389, 1265753.5)),
        _two_input("AND2X1", "A1*A2", 433500, 19492.1, 80336.825,
                   (94.0992, 1995175.0), (94.3888, 2361360.0)),
        _two_input("OR2X1", "A1+A2", 563530, 19964.3, 80960.2,
                   (94.5846, 2107275.0), (94.5846, 2107275.0)),
        _two_input("XOR2X1", "A1*!A2+!A1*A2", 1042800, 24330.1, 163087.5875,
                   (186.755, 4043355.0), (186.924, 4153300.0)),
        _two_input("XNOR2X1", "A1*A2+!A1*!A2", 1347557, 34207.6, 207990.25,
                   (186.755, 4947002.5), (186.924, 5050440.0)),
        Cell(
            "BUF",
            "A",
            (Pin("A", _INVX1.pins[0].capacitance_pF, 2 * _INVX1.pins[0].delay_ns),),
            2 * _INVX1.area_um2,
            2 * _INVX1.leakage_nW,
            2 * _INVX1.internal_energy_pJ,
            composite="two INVX1 in series",
        ),
    ),
)


# ----- printed batteries ----------------------------------------------------------


@dataclass(frozen=True)
class Battery:
    """A printed battery and the power it can deliver (mW)."""

    name: str
    power_mW: float


#: Printed batteries (as listed in Mubarik et al., MICRO 2020), smallest budget first.
PRINTED_BATTERIES = (
    Battery("Blue Spark", 3.0),
    Battery("Zinergy", 15.0),
    Battery("Molex", 30.0),
)


def batteries_for(power_mW: float, batteries: tuple[Battery, ...] = PRINTED_BATTERIES) -> list[str]:
    """Names of the batteries whose budget covers ``power_mW`` (mW), in table order."""
    return [b.name for b in batteries if power_mW <= b.power_mW]
