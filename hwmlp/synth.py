"""Synthesis: Verilog -> gate netlist on a cell library (Yosys + ABC) -> area, power, delay.

:func:`synthesize` runs Debian's Yosys (``yosys``, with its built-in ABC) on a
combinational design, maps it onto a :class:`~hwmlp.tech.Technology` through a
genlib written from the project's own figures, and analyses the mapped netlist:

* area (um^2) and leakage (nW) are sums over the cell instances;
* delay (ns) is the critical path of a static timing analysis with each cell's
  representative pin-to-output delays (:meth:`Netlist.critical_path_ns`);
* dynamic power (mW) comes from the switching activity of a zero-delay,
  bit-parallel simulation of the netlist itself (:class:`NetlistSim`), with the
  cells' internal energy and ``C * V^2 / 2`` per transition of each net's load.

:class:`Netlist` and :class:`NetlistSim` also serve to check a netlist against
the golden model: ``NetlistSim(netlist).predict(X)`` is the circuit's ``y`` for
every row of ``X`` (see :mod:`hwmlp.rtl` for the ``x``/``y`` port contract).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import HwmlpError, ToolMissingError
from .io import write_text_atomic
from .tech import EGFET_1V0, Technology, batteries_for

#: ABC mapping script: area-oriented mapping after choice computation (see DESIGN.md section 5).
ABC_SCRIPT = "strash; dch; map -a; topo\n"

#: Yosys techmap that turns ABC's genlib constant gates (``ZERO``, ``ONE``) into constant wires.
CONSTANTS_MAP = (
    "module ZERO(output Y); assign Y = 1'b0; endmodule\n"
    "module ONE(output Y); assign Y = 1'b1; endmodule\n"
)

#: Random input vectors used for switching activity when the caller gives none.
DEFAULT_ACTIVITY_VECTORS = 1024
ACTIVITY_SEED = 0

_YOSYS_HINT = (
    "install it with `apt-get install yosys` (Debian/Ubuntu; includes ABC), "
    "or run `make test` / `make demo`, which install it"
)


# ----- the synthesis step ---------------------------------------------------------


@dataclass
class SynthResult:
    """Figures of one synthesized design.

    ``cells``: instances per cell type (``BUF`` included: it is two real inverters);
    ``area_um2``; ``leakage_mW``; ``dynamic_mW`` at ``evaluation_rate_hz``
    classifications per second; ``delay_ns``: critical path; ``batteries``: the
    printed batteries whose budget covers :attr:`power_mW`; paths of the mapped
    netlist (Verilog, Yosys JSON), the behavioural cell models and the Yosys log;
    ``activity_vectors``: how many input vectors the switching activity came from;
    ``runtime_s``: wall time of the Yosys run.
    """

    top: str
    technology: str
    cells: dict[str, int]
    area_um2: float
    leakage_mW: float
    dynamic_mW: float
    delay_ns: float
    evaluation_rate_hz: float | None
    batteries: list[str]
    activity_vectors: int
    netlist_verilog: Path
    netlist_json: Path
    cell_models: Path
    log: Path
    runtime_s: float

    @property
    def area_cm2(self) -> float:
        return self.area_um2 / 1e8

    @property
    def power_mW(self) -> float:
        return self.leakage_mW + self.dynamic_mW

    def to_dict(self) -> dict:
        """JSON-ready figures (paths as strings)."""
        return {
            "top": self.top,
            "technology": self.technology,
            "cells": dict(sorted(self.cells.items())),
            "n_cells": sum(self.cells.values()),
            "area_um2": self.area_um2,
            "area_cm2": self.area_cm2,
            "leakage_mW": self.leakage_mW,
            "dynamic_mW": self.dynamic_mW,
            "power_mW": self.power_mW,
            "delay_ns": self.delay_ns,
            "evaluation_rate_hz": self.evaluation_rate_hz,
            "batteries": list(self.batteries),
            "activity_vectors": self.activity_vectors,
            "netlist_verilog": str(self.netlist_verilog),
            "netlist_json": str(self.netlist_json),
            "cell_models": str(self.cell_models),
            "log": str(self.log),
            "runtime_s": self.runtime_s,
        }


def synthesize(
    verilog_path: str | Path,
    top: str,
    workdir: str | Path,
    tech: Technology = EGFET_1V0,
    vectors=None,
    evaluation_rate_hz: float | None = None,
) -> SynthResult:
    """Map the combinational design ``top`` of ``verilog_path`` onto ``tech`` and analyse it.

    Writes into ``workdir`` (created if needed): ``cells.genlib``, ``map.abc``,
    ``constants.v``, ``synth.ys``, ``yosys.log``, the mapped netlist ``netlist.v`` and
    ``netlist.json``, and ``cells.v`` (behavioural models of the cells).

    Flow: ``synth -flatten -noabc -noalumacc`` (generic gates), ``abc -genlib``
    with :data:`ABC_SCRIPT`, ABC's constant gates turned into wires, ``opt_clean``.
    Figures: see :class:`SynthResult` (um^2, mW, ns); ``evaluation_rate_hz`` is
    None only for a netlist without cells (zero delay, nothing to switch).

    ``vectors``: input vectors for the switching activity, a non-negative integer
    matrix (N, n_features) packed into the circuit's single input port ``x``
    feature by feature, feature 0 in the least significant bits, ``width(x) /
    n_features`` bits each (the :mod:`hwmlp.rtl` contract). None: 1024 seeded
    random vectors over all input ports. Activity is counted between consecutive
    vectors, in the order given, without glitches (zero-delay simulation).

    ``evaluation_rate_hz``: classifications per second for the dynamic power.
    None: one classification per critical-path delay, i.e. the fastest rate the
    circuit allows (``1e9 / delay_ns``), which gives the largest dynamic power.

    Raises :class:`ToolMissingError` when ``yosys`` is not installed and
    :class:`HwmlpError` (with the tail of the Yosys log) when Yosys fails.
    """
    verilog_path = Path(verilog_path).resolve()
    workdir = Path(workdir)
    if not verilog_path.is_file():
        raise HwmlpError(f"Verilog file {verilog_path} not found")
    if any(c in str(verilog_path) for c in '"\n\r'):
        raise HwmlpError(f"Verilog path {str(verilog_path)!r} contains quotes or line breaks: rename it")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise HwmlpError(f"top module {top!r} is not a plain Verilog identifier")
    if evaluation_rate_hz is not None and not evaluation_rate_hz > 0:
        raise HwmlpError(f"evaluation rate {evaluation_rate_hz!r} Hz must be positive")
    yosys = shutil.which("yosys")
    if yosys is None:
        raise ToolMissingError(f"yosys not found on PATH: {_YOSYS_HINT}")
    workdir.mkdir(parents=True, exist_ok=True)

    write_text_atomic(workdir / "cells.genlib", tech.genlib())
    write_text_atomic(workdir / "map.abc", ABC_SCRIPT)
    write_text_atomic(workdir / "constants.v", CONSTANTS_MAP)
    write_text_atomic(workdir / "cells.v", tech.verilog_models())
    write_text_atomic(
        workdir / "synth.ys",
        "\n".join(
            [
                f'read_verilog "{verilog_path}"',
                f"hierarchy -check -top {top}",
                # -noalumacc: adders and constant multipliers stay separate operators,
                # which ABC maps 5-10% smaller than Yosys's merged $macc arrays.
                f"synth -flatten -top {top} -noabc -noalumacc",
                "abc -genlib cells.genlib -script map.abc",
                "techmap -map constants.v",
                "opt_clean -purge",
                "write_verilog -noattr netlist.v",
                "write_json netlist.json",
            ]
        )
        + "\n",
    )
    start = time.monotonic()
    proc = subprocess.run(
        [yosys, "-q", "-l", "yosys.log", "-s", "synth.ys"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    runtime_s = time.monotonic() - start
    if proc.returncode != 0:
        raise HwmlpError(
            f"yosys failed on {verilog_path} (exit {proc.returncode}): "
            f"{_tail(workdir / 'yosys.log', proc.stdout)} (log: {workdir / 'yosys.log'})"
        )

    netlist = Netlist.from_yosys_json(workdir / "netlist.json", top, tech)
    sim = NetlistSim(netlist)
    if vectors is None:
        rng = np.random.default_rng(ACTIVITY_SEED)
        stimulus = {
            name: rng.integers(0, 2, size=(DEFAULT_ACTIVITY_VECTORS, len(bits)), dtype=np.uint8)
            for name, bits in netlist.inputs.items()
        }
    else:
        stimulus = {"x": feature_bits(vectors, netlist.port_width("x"))}
    simulation = sim.run(stimulus)
    delay_ns = netlist.critical_path_ns()
    if evaluation_rate_hz is None:
        evaluation_rate_hz = 1e9 / delay_ns if delay_ns > 0 else None
    dynamic_mW = netlist.dynamic_power_mW(simulation.toggle_rates(), evaluation_rate_hz or 0.0)
    leakage_mW = netlist.leakage_nW() * 1e-6
    return SynthResult(
        top=top,
        technology=tech.name,
        cells=netlist.cell_counts(),
        area_um2=netlist.area_um2(),
        leakage_mW=leakage_mW,
        dynamic_mW=dynamic_mW,
        delay_ns=delay_ns,
        evaluation_rate_hz=evaluation_rate_hz,
        batteries=batteries_for(leakage_mW + dynamic_mW),
        activity_vectors=simulation.n_vectors,
        netlist_verilog=workdir / "netlist.v",
        netlist_json=workdir / "netlist.json",
        cell_models=workdir / "cells.v",
        log=workdir / "yosys.log",
        runtime_s=runtime_s,
    )


def _tail(log: Path, output: str, lines: int = 3) -> str:
    """The last few non-empty lines of the Yosys log (or its console output), on one line."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        text = ""
    tail = [ln.strip() for ln in (text or output).splitlines() if ln.strip()][-lines:]
    return " | ".join(tail) or "no output"


# ----- the mapped netlist -----------------------------------------------------------

#: Net index of the constants 0 and 1 (Yosys numbers real nets from 2).
_CONST = {"0": 0, "1": 1, "x": 0, "z": 0}


@dataclass(frozen=True)
class Instance:
    """One cell instance: ``inputs`` maps the cell's input pins to net indices."""

    name: str
    cell: str
    inputs: Mapping[str, int]
    output: int


class Netlist:
    """A flat combinational gate netlist on a technology's cells.

    Nets are integers: 0 and 1 are the constants (undriven ``x``/``z`` bits read
    as 0), Yosys's bit numbers otherwise. ``inputs``/``outputs`` map port names to
    their nets, least significant bit first. ``instances`` are in topological order.
    """

    def __init__(
        self,
        inputs: Mapping[str, list[int]],
        outputs: Mapping[str, list[int]],
        instances: list[Instance],
        tech: Technology = EGFET_1V0,
    ):
        self.tech = tech
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        driver: dict[int, int] = {}
        for k, inst in enumerate(instances):
            cell = tech.cell(inst.cell)
            if set(inst.inputs) != set(cell.inputs):
                raise HwmlpError(
                    f"instance {inst.name} of {cell.name} connects pins {sorted(inst.inputs)}, "
                    f"the cell has {list(cell.inputs)}"
                )
            if inst.output in driver or inst.output in (0, 1):
                raise HwmlpError(f"net {inst.output} has more than one driver")
            driver[inst.output] = k
        primary = {n for bits in self.inputs.values() for n in bits}
        if primary & driver.keys() or primary & {0, 1}:
            raise HwmlpError("an input port bit is driven by a cell or tied to a constant")
        known = primary | driver.keys() | {0, 1}
        for inst in instances:
            for pin, net in inst.inputs.items():
                if net not in known:
                    raise HwmlpError(f"pin {pin} of instance {inst.name} reads undriven net {net}")
        for name, bits in self.outputs.items():
            if any(n not in known for n in bits):
                raise HwmlpError(f"output port {name} has an undriven bit")
        self.instances, self.levels = _levelize(instances, driver)
        self.n_nets = 1 + max(known)

    @classmethod
    def from_yosys_json(cls, source, top: str | None = None, tech: Technology = EGFET_1V0) -> "Netlist":
        """Read module ``top`` (the only module when None) of a Yosys ``write_json``
        file, or of its already parsed dict."""
        data = json.loads(Path(source).read_text()) if isinstance(source, (str, Path)) else source
        modules = data.get("modules", {})
        if top is None:
            if len(modules) != 1:
                raise HwmlpError(f"netlist has modules {sorted(modules)}: name the top one")
            top = next(iter(modules))
        if top not in modules:
            raise HwmlpError(f"netlist has no module {top!r} (modules: {sorted(modules)})")
        module = modules[top]

        def net(bit) -> int:
            return _CONST[bit] if isinstance(bit, str) else int(bit)

        inputs, outputs = {}, {}
        for name, port in module.get("ports", {}).items():
            if port["direction"] not in ("input", "output"):
                raise HwmlpError(f"port {name} is {port['direction']}: only inputs and outputs are supported")
            (inputs if port["direction"] == "input" else outputs)[name] = [net(b) for b in port["bits"]]
        instances = []
        for name, c in module.get("cells", {}).items():
            cell = tech.cell(c["type"])
            conn = c["connections"]
            if set(conn) != {*cell.inputs, cell.output} or any(len(bits) != 1 for bits in conn.values()):
                raise HwmlpError(f"instance {name} of {cell.name} has connections {sorted(conn)}")
            instances.append(
                Instance(name, cell.name, {p: net(conn[p][0]) for p in cell.inputs}, net(conn[cell.output][0]))
            )
        return cls(inputs, outputs, instances, tech)

    def port_width(self, name: str) -> int:
        if name in self.inputs:
            return len(self.inputs[name])
        if name in self.outputs:
            return len(self.outputs[name])
        raise HwmlpError(f"the netlist has no port {name!r} (ports: {sorted({**self.inputs, **self.outputs})})")

    # ----- cost figures -----------------------------------------------------------
    def cell_counts(self) -> dict[str, int]:
        """Instances per cell type."""
        return dict(Counter(inst.cell for inst in self.instances))

    def area_um2(self) -> float:
        return sum(self.tech.cell(c).area_um2 * n for c, n in self.cell_counts().items())

    def leakage_nW(self) -> float:
        return sum(self.tech.cell(c).leakage_nW * n for c, n in self.cell_counts().items())

    def net_loads_pF(self) -> np.ndarray:
        """Capacitance (pF) each net drives: the sum of the input pins it reaches."""
        load = np.zeros(self.n_nets)
        for inst in self.instances:
            cell = self.tech.cell(inst.cell)
            for pin, net in inst.inputs.items():
                load[net] += cell.pin(pin).capacitance_pF
        return load

    def critical_path_ns(self) -> float:
        """Longest input-to-output delay (ns): static timing with each cell's
        representative pin-to-output delays; inputs and constants arrive at 0."""
        arrival = np.zeros(self.n_nets)
        for inst in self.instances:
            cell = self.tech.cell(inst.cell)
            arrival[inst.output] = max(arrival[n] + cell.pin(p).delay_ns for p, n in inst.inputs.items())
        outs = [n for bits in self.outputs.values() for n in bits]
        return float(arrival[outs].max()) if outs else 0.0

    def dynamic_power_mW(self, toggle_rates: np.ndarray, evaluation_rate_hz: float) -> float:
        """Dynamic power (mW) at ``evaluation_rate_hz`` classifications per second, given
        each net's mean transitions per classification: per transition, the driving
        cell's internal energy plus ``C * V^2 / 2`` of the net's load (input-port
        nets count their load only)."""
        energy = self.tech.switching_energy_pJ(self.net_loads_pF())
        for inst in self.instances:
            energy[inst.output] += self.tech.cell(inst.cell).internal_energy_pJ
        pJ_per_evaluation = float(np.dot(toggle_rates, energy))
        return pJ_per_evaluation * evaluation_rate_hz * 1e-9


def _levelize(instances: list[Instance], driver: Mapping[int, int]) -> tuple[list[Instance], list[int]]:
    """Instances in topological order with their logic levels (1 + deepest driving
    instance, 1 for instances fed by ports and constants only); HwmlpError on a loop."""
    preds = [[driver[n] for n in inst.inputs.values() if n in driver] for inst in instances]
    readers: list[list[int]] = [[] for _ in instances]
    waiting = [len(p) for p in preds]
    for k, ps in enumerate(preds):
        for p in ps:
            readers[p].append(k)
    level = [0] * len(instances)
    order = [k for k, w in enumerate(waiting) if w == 0]
    for k in order:  # grows while it is walked (Kahn's algorithm)
        level[k] = 1 + max((level[p] for p in preds[k]), default=0)
        for r in readers[k]:
            waiting[r] -= 1
            if waiting[r] == 0:
                order.append(r)
    if len(order) != len(instances):
        stuck = next(inst.name for inst, w in zip(instances, waiting) if w)
        raise HwmlpError(f"combinational loop through instance {stuck}")
    return [instances[k] for k in order], [level[k] for k in order]


# ----- bit-parallel simulation ---------------------------------------------------------


def feature_bits(X, width: int) -> np.ndarray:
    """Pack a feature matrix into the bits of an ``x`` port of ``width`` bits.

    ``X``: non-negative integers (N, n_features); each feature takes
    ``width / n_features`` bits, feature 0 in the least significant ones.
    Returns a bool matrix (N, width), bit 0 first.
    """
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] == 0 or not np.issubdtype(X.dtype, np.integer):
        raise HwmlpError(f"input vectors must be an integer matrix (N, n_features), got {X.dtype} {X.shape}")
    if width % X.shape[1]:
        raise HwmlpError(f"{X.shape[1]} features do not divide the {width}-bit input port evenly")
    bits = width // X.shape[1]
    if X.size and (X.min() < 0 or X.max() >= 1 << bits):
        raise HwmlpError(f"input vectors must lie in 0..{(1 << bits) - 1} for {bits}-bit features")
    shifts = np.arange(bits)
    return ((X[:, :, None].astype(np.int64) >> shifts) & 1).reshape(len(X), width).astype(bool)


class NetlistSim:
    """Zero-delay, bit-parallel evaluation of a :class:`Netlist` on many input vectors.

    Vectors are packed 64 to a uint64 word; all instances of one cell type at one
    logic level are evaluated together, so the cost grows with the logic depth and
    the number of words, not with the number of vectors times cells.
    """

    def __init__(self, netlist: Netlist):
        self.netlist = netlist
        groups: dict[tuple[int, str], list[Instance]] = {}
        for inst, lvl in zip(netlist.instances, netlist.levels):
            groups.setdefault((lvl, inst.cell), []).append(inst)
        self._groups = [
            (
                netlist.tech.cell(cell),
                np.array([i.output for i in insts]),
                {p: np.array([i.inputs[p] for i in insts]) for p in netlist.tech.cell(cell).inputs},
            )
            for (_, cell), insts in sorted(groups.items())
        ]

    def run(self, inputs: Mapping[str, np.ndarray]) -> "Simulation":
        """Simulate ``inputs``: per input port, a 0/1 matrix (N, width), bit 0 first."""
        nl = self.netlist
        if set(inputs) != set(nl.inputs):
            raise HwmlpError(f"give values for the input ports {sorted(nl.inputs)}, got {sorted(inputs)}")
        sizes = {np.shape(v)[0] if np.ndim(v) == 2 else -1 for v in inputs.values()}
        if len(sizes) > 1 or -1 in sizes:
            raise HwmlpError("input port values must be (N, width) matrices with the same N")
        n = sizes.pop() if sizes else 1
        if n < 1:
            raise HwmlpError("simulate at least one input vector")
        n_words = -(-n // 64)
        values = np.zeros((nl.n_nets, n_words), dtype=np.uint64)
        values[1] = ~np.uint64(0)
        for name, bits in inputs.items():
            bits = np.asarray(bits)
            if bits.shape[1] != len(nl.inputs[name]):
                raise HwmlpError(f"port {name} has {len(nl.inputs[name])} bits, got {bits.shape[1]}")
            values[nl.inputs[name]] = _pack(bits.astype(bool).T, n_words)
        for cell, outs, pins in self._groups:
            values[outs] = cell.evaluate({p: values[nets] for p, nets in pins.items()})
        return Simulation(nl, values, n)

    def predict(self, X) -> np.ndarray:
        """The circuit's ``y`` for each row of the feature matrix ``X`` (packed into ``x``)."""
        return self.run({"x": feature_bits(X, self.netlist.port_width("x"))}).value("y")


def _pack(bits: np.ndarray, n_words: int) -> np.ndarray:
    """(k, N) bools -> (k, n_words) uint64, vector v in bit v % 64 of word v // 64."""
    padded = np.zeros((bits.shape[0], n_words * 64), dtype=bool)
    padded[:, : bits.shape[1]] = bits
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").astype(np.uint64)


def _unpack(words: np.ndarray, n: int) -> np.ndarray:
    """(k, n_words) uint64 -> (k, n) bools (inverse of :func:`_pack`)."""
    as_bytes = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    return np.unpackbits(as_bytes, axis=1, bitorder="little")[:, :n].astype(bool)


@dataclass
class Simulation:
    """Values of every net of a netlist for ``n_vectors`` input vectors (packed words)."""

    netlist: Netlist
    words: np.ndarray
    n_vectors: int

    def bits(self, port: str) -> np.ndarray:
        """Bool matrix (N, width) of a port, bit 0 first."""
        nets = {**self.netlist.inputs, **self.netlist.outputs}
        if port not in nets:
            raise HwmlpError(f"the netlist has no port {port!r}")
        return _unpack(self.words[nets[port]], self.n_vectors).T

    def value(self, port: str) -> np.ndarray:
        """A port as unsigned integers, one per vector (ports of up to 63 bits)."""
        b = self.bits(port)
        if b.shape[1] > 63:
            raise HwmlpError(f"port {port} has {b.shape[1]} bits: read it with bits()")
        return (b.astype(np.int64) << np.arange(b.shape[1])).sum(axis=1)

    def toggle_rates(self) -> np.ndarray:
        """Per net, transitions per step between consecutive vectors (0 for one vector)."""
        w = self.words
        if self.n_vectors < 2:
            return np.zeros(len(w))
        nxt = np.zeros_like(w)
        nxt[:, :-1] = w[:, 1:] << np.uint64(63)
        changed = w ^ ((w >> np.uint64(1)) | nxt)  # bit v: vector v differs from vector v + 1
        valid = _pack(np.arange(w.shape[1] * 64)[None, :] < self.n_vectors - 1, w.shape[1])[0]
        return np.bitwise_count(changed & valid).sum(axis=1) / (self.n_vectors - 1)
