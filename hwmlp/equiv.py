"""Formal equivalence of an emitted RTL design and its mapped gate netlist.

:func:`prove_equivalent` proves, for every input, that the mapped netlist
(``netlist.v`` with the behavioural cell models ``cells.v`` that
:func:`hwmlp.synth.synthesize` writes) computes the same outputs as the RTL it
was synthesized from. Method (measured on the largest published model, Pendigits
16-3-10, about 9000 cells):

1. Yosys (``yosys``) reads the RTL as module ``gold`` and the netlist with its
   cell models as module ``gate``, builds ``miter -equiv -flatten`` (one output,
   ``trigger``, true where any output differs), lowers it to an and-inverter
   graph and writes it as AIGER (about 20 s for Pendigits);
2. ABC (``yosys-abc``, shipped with Yosys) proves the miter's output constant 0
   with ``iprove`` (SAT sweeping: internal equivalences are found and merged,
   about 2 s for Pendigits), and writes a counterexample when the output can be 1.

A single SAT call over the whole miter (``sat -verify -prove-asserts``), the
``equiv_make``/``equiv_simple``/``equiv_induct`` flow and ``freduce`` each ran
more than 5 minutes on Pendigits without an answer: the RTL's and the netlist's
internal signals share no names, so Yosys's own passes cannot cut the problem.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import HwmlpError, ToolMissingError
from .io import write_bytes_atomic, write_text_atomic

METHOD = "yosys miter -equiv + abc iprove"

#: Seconds ABC may spend on one proof before the result is "undecided".
DEFAULT_TIME_LIMIT_S = 600.0

#: The Yosys script: gold RTL and gate netlist -> miter -> AIGER (run in the workdir).
MITER_SCRIPT = """\
read_verilog gold.v
rename {top} gold
read_verilog cells.v gate.v
rename {top} gate
proc
miter -equiv -flatten gold gate miter
hierarchy -top miter
techmap
aigmap
opt_clean
write_aiger -map miter.map miter.aig
"""

#: The ABC script: prove the miter's single output constant 0, else write a counterexample.
PROVE_SCRIPT = "read_aiger miter.aig\niprove\nwrite_cex -n cex.txt\n"

_STATUS = {"UNSATISFIABLE": "equivalent", "SATISFIABLE": "different", "UNDECIDED": "undecided"}
_VERDICT = re.compile(r"^(UNSATISFIABLE|SATISFIABLE|UNDECIDED)\b", re.M)
_HINT = "install it with `apt-get install yosys` (Debian/Ubuntu; ships yosys-abc)"


@dataclass
class EquivalenceResult:
    """Outcome of one equivalence proof.

    ``status``: ``"equivalent"`` (proven for every input), ``"different"`` (ABC
    found an input on which some output differs: ``counterexample``) or
    ``"undecided"`` (ABC gave up or ran out of its time limit).
    ``counterexample``: per input port of the top module, the port's value as an
    unsigned integer (bit 0 = the port's least significant bit; a port that neither
    circuit reads may be absent); None unless ``status`` is ``"different"``.
    ``seconds``: wall time of both tool runs. ``log``: the Yosys log followed by
    ABC's output.
    """

    status: str
    method: str
    seconds: float
    log: Path
    counterexample: dict[str, int] | None = None

    @property
    def proven(self) -> bool:
        """True when the two circuits were proven equal on every input."""
        return self.status == "equivalent"

    def to_dict(self) -> dict:
        """JSON-ready summary (the log path as a string)."""
        return {
            "proven": self.proven,
            "status": self.status,
            "method": self.method,
            "seconds": self.seconds,
            "counterexample": self.counterexample,
            "log": str(self.log),
        }


def prove_equivalent(
    rtl_path: str | Path,
    netlist_path: str | Path,
    cells_path: str | Path,
    top: str,
    workdir: str | Path,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> EquivalenceResult:
    """Prove that module ``top`` of ``netlist_path`` (cells modelled by ``cells_path``)
    equals module ``top`` of ``rtl_path`` on every input.

    Both modules must have the same ports (matched by name). The three files are
    copied into ``workdir`` (created if needed) as ``gold.v``, ``gate.v`` and
    ``cells.v``, next to ``miter.ys``, ``prove.abc``, ``miter.aig``, ``miter.map``,
    ``cex.txt`` (only for a counterexample) and the log ``equiv.log``; running
    ``yosys -s miter.ys`` then ``yosys-abc -f prove.abc`` there repeats the proof.

    A difference is reported in the result (status ``"different"`` with a
    counterexample), not raised; so is a proof that ABC abandons or that exceeds
    ``time_limit_s`` seconds (status ``"undecided"``). Raises
    :class:`ToolMissingError` when ``yosys`` or ``yosys-abc`` is not installed and
    :class:`HwmlpError`, naming the log, when Yosys or ABC fails (e.g. the ports differ).
    """
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise HwmlpError(f"top module {top!r} is not a plain Verilog identifier")
    if top in ("gold", "gate", "miter"):
        raise HwmlpError(f"top module {top!r} clashes with the miter's module names: rename it")
    sources = {"gold.v": rtl_path, "gate.v": netlist_path, "cells.v": cells_path}
    contents = {}
    for name, path in sources.items():
        try:
            contents[name] = Path(path).read_bytes()
        except OSError as e:
            raise HwmlpError(f"cannot read Verilog file {path}: {e.strerror}") from None
    yosys, abc = shutil.which("yosys"), shutil.which("yosys-abc")
    if yosys is None or abc is None:
        raise ToolMissingError(f"{'yosys' if yosys is None else 'yosys-abc'} not found on PATH: {_HINT}")

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    for name, data in contents.items():
        write_bytes_atomic(workdir / name, data)
    write_text_atomic(workdir / "miter.ys", MITER_SCRIPT.format(top=top))
    write_text_atomic(workdir / "prove.abc", PROVE_SCRIPT)
    log = workdir / "equiv.log"
    (workdir / "cex.txt").unlink(missing_ok=True)

    start = time.monotonic()
    proc = subprocess.run(
        [yosys, "-q", "-l", log.name, "-s", "miter.ys"],
        cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    if proc.returncode != 0:
        errors = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.startswith("ERROR")]
        raise HwmlpError(
            f"yosys could not build the equivalence miter of {top} ({errors[-1] if errors else f'exit {proc.returncode}'}): "
            f"see {log}"
        )
    try:
        proc = subprocess.run(
            [abc, "-f", "prove.abc"], cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=time_limit_s,
        )
        output, verdict = proc.stdout, _VERDICT.search(proc.stdout)
    except subprocess.TimeoutExpired:
        output, verdict, proc = f"abandoned after the time limit of {time_limit_s} s\n", None, None
    seconds = time.monotonic() - start
    with log.open("a") as f:
        f.write(f"\n==== yosys-abc -f prove.abc ====\n{output}")
    if proc is None:
        return EquivalenceResult("undecided", METHOD, seconds, log)
    if proc.returncode != 0 or verdict is None:
        raise HwmlpError(f"yosys-abc gave no verdict on the equivalence of {top} (exit {proc.returncode}): see {log}")
    status = _STATUS[verdict.group(1)]
    counterexample = _read_counterexample(workdir, log) if status == "different" else None
    return EquivalenceResult(status, METHOD, seconds, log, counterexample)


def _read_counterexample(workdir: Path, log: Path) -> dict[str, int]:
    """The input ports' values in ABC's ``cex.txt``, through Yosys's AIGER map ``miter.map``.

    ``cex.txt`` has one ``pi<k>@0=<bit>`` line per AIGER input ``k``; the map's
    ``input <k> <bit> in_<port>`` lines say which port bit that input is.
    """
    try:
        cex = (workdir / "cex.txt").read_text()
    except OSError:
        raise HwmlpError(f"yosys-abc disproved the equivalence but wrote no counterexample: see {log}") from None
    bits = {int(k): int(v) for k, v in re.findall(r"^pi0*(\d+)@0=([01])$", cex, re.M)}
    ports: dict[str, int] = {}
    for k, bit, wire in re.findall(r"^input (\d+) (\d+) in_(\S+)$", (workdir / "miter.map").read_text(), re.M):
        if int(k) not in bits:
            raise HwmlpError(f"yosys-abc's counterexample lacks input {k} ({wire}[{bit}]): see {workdir / 'cex.txt'}")
        ports[wire] = ports.get(wire, 0) | bits[int(k)] << int(bit)
    return ports
