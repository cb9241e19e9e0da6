"""The ``hwmlp`` command line.

``hwmlp run FLOW.yaml --out DIR`` runs every stage; ``explore FLOW.yaml`` trains and
runs the hardware-aware search; ``train``, ``emit``, ``verify``, ``synth`` and
``report`` run one stage on the artefacts in ``DIR``.
User errors print one line (``hwmlp: error: ...``) and exit with status 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__
from .errors import HwmlpError
from .flow import SIMULATOR_SETTINGS

err = Console(stderr=True)
#: Reports go to stdout; when it is not a terminal (logs, CI) use a width that fits the table.
out = Console(width=None if sys.stdout.isatty() else 132)


@contextmanager
def _stage(label: str, total: int):
    """Show a progress bar for one stage; yields a callback ``advance(item, completed=None)``
    that shows ``item`` and advances the bar by one step, or to ``completed`` steps."""
    start = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"), TimeElapsedColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task(label, total=total, item="")

        def advance(item: str, completed: int | None = None) -> None:
            bar.update(task, advance=None if completed is not None else 1, completed=completed, item=item)

        yield advance
    err.print(f"[green]done[/] {label} ({time.perf_counter() - start:.1f} s)")


def _run_stages(args, stages: list[str]) -> None:
    from .explore import prepare_resume, refresh_front, stage_explore
    from .flow import load_flow
    from .pipeline import RunDir, stage_emit, stage_report, stage_synth, stage_train, stage_verify

    run = RunDir(args.out)
    resume = getattr(args, "resume", False)
    if "train" in stages:
        flow = load_flow(args.flow, seed=args.seed)
        if resume:
            prepare_resume(flow, run)
        else:
            run.root.mkdir(parents=True, exist_ok=True)
            with _stage("train", len(flow["designs"])) as p:
                stage_train(flow, run, p)
    elif not run.root.is_dir():
        raise HwmlpError(f"run folder {run.root} does not exist: run `hwmlp train FLOW --out {run.root}` first")
    if "explore" in stages and (args.command == "explore" or run.flow_config()["explore"]["enabled"]):
        with _stage("explore", run.flow_config()["explore"]["generations"] + 1) as p:
            front = stage_explore(run, resume, lambda s: p(_generation(s), completed=s.generation + 1))
        if args.command == "explore":
            print_front(front, run.root)
    n = len(run.design_names()) if stages != ["report"] else 0
    if "emit" in stages:
        with _stage("emit", n) as p:
            stage_emit(run, p)
    if "verify" in stages:
        with _stage("verify", n) as p:
            stage_verify(run, getattr(args, "simulator", None), p)
    if "synth" in stages and (args.command == "synth" or run.flow_config()["synth"]["enabled"]):
        with _stage("synth", n) as p:
            stage_synth(run, p, getattr(args, "simulator", None))
    if "report" in stages:
        report = stage_report(run)
        print_summary(report, run.root)
        front = refresh_front(run)
        if front is not None:
            print_front(front, run.root)


def _generation(stats) -> str:
    """One search generation for the progress bar: best accuracy, smallest modelled area, front size."""
    area = "-" if stats.smallest_area_um2 is None else f"{stats.smallest_area_um2 / 1e8:.2f} cm²"
    return f"best acc {stats.best_accuracy:.3f}  smallest area {area}  front {stats.front_size}"


def print_summary(report: dict, root: Path) -> None:
    """The end-of-run table: one row per design."""
    table = Table(title=f"hwmlp: {report['flow']}")
    for col, justify in [("design", "left"), ("topology", "left"), ("float acc", "right"),
                         ("test acc", "right"), ("area cm²", "right"), ("power mW", "right"),
                         ("delay ms", "right"), ("verified", "right"), ("netlist", "left"), ("battery", "left")]:
        table.add_column(col, justify=justify)
    for d in report["designs"]:
        ver = d.get("verification")
        table.add_row(
            d["name"], "-".join(map(str, d["topology"])), f"{d['float_accuracy']:.3f}",
            f"{d['accuracy']['test']:.3f}",
            _fmt(d.get("area_cm2"), ".3f"), _fmt(d.get("power_mW"), ".2f"),
            _fmt(d["delay_ns"] / 1e6 if "delay_ns" in d else None, ".1f"),
            "-" if ver is None else (f"{ver['vectors']} ok" if ver["mismatches"] == 0 else f"{ver['mismatches']} FAIL"),
            _netlist_status(d.get("netlist_verification")),
            ", ".join(d.get("batteries", [])) or ("none" if "batteries" in d else "-"),
        )
    out.print(table)
    out.print(f"report: {root / 'report.json'}")


def print_front(front: dict, root: Path) -> None:
    """The search front: one row per design as ranked in ``front.json``."""
    real = front["ranked_by"] == "area_cm2"
    table = Table(title=f"hwmlp explore: {front['flow']} ({front['generations']} generations, "
                        f"{front['evaluations']} evaluations)")
    cols = ["design", "val acc", "fit acc", "test acc", "model cm²", "model mW"]
    cols += ["area cm²", "power mW", "Pareto"] if real else []
    for col in cols:
        table.add_column(col, justify="left" if col in ("design", "Pareto") else "right")
    for d in front["designs"]:
        name = f"{d['name']} (exact baseline)" if d["baseline"] else d["name"] + ("" if d["emitted"] else " (not emitted)")
        row = [name, f"{d['val_accuracy']:.3f}", f"{d['fit_accuracy']:.3f}", f"{d['test_accuracy']:.3f}",
               f"{d['model_area_cm2']:.3f}", f"{d['model_power_mW']:.2f}"]
        if real:
            row += [_fmt(d["area_cm2"], ".3f"), _fmt(d["power_mW"], ".2f"),
                    "-" if d["pareto"] is None else ("yes" if d["pareto"] else "")]
        table.add_row(*row)
    out.print(table)
    out.print(f"front: {root / 'explore' / 'front.json'} (.csv, .png)")


def _netlist_status(nv: dict | None) -> str:
    """The summary's netlist column: gate-level simulation and formal equivalence
    (``ok``: no mismatch and proven equivalent to the RTL)."""
    if nv is None:
        return "-"
    if nv["passed"]:
        return "ok"
    gates = "gates ok" if nv["mismatches"] == 0 else f"gates {nv['mismatches']} FAIL"
    return f"{gates}, {nv['equivalence']}"


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwmlp",
        description="Design bespoke, approximate MLP classifiers for printed (EGFET) hardware.",
    )
    parser.add_argument("--version", action="version", version=f"hwmlp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help: str, flow: bool):
        p = sub.add_parser(name, help=help, description=help)
        if flow:
            p.add_argument("flow", type=Path, help="flow file (YAML)")
        p.add_argument("--out", type=Path, required=True, help="run folder (all outputs go below it)")
        if flow:
            p.add_argument("--seed", type=int, default=None, help="override the flow's seed")
        return p

    resume_help = "continue the search from DIR/explore/checkpoint.json (same flow; generations may grow)"
    p = add("run", "run a whole flow: train, explore, emit, verify, synth, report", flow=True)
    p.add_argument("--simulator", choices=SIMULATOR_SETTINGS, default=None, help="override verify.simulator")
    p.add_argument("--resume", action="store_true", help=resume_help)
    add("train", "load data, train the float model, derive the integer designs", flow=True)
    p = add("explore", "train, then search approximate designs for the accuracy/area front", flow=True)
    p.add_argument("--resume", action="store_true", help=resume_help)
    add("emit", "write each design's Verilog", flow=False)
    p = add("verify", "simulate each design's Verilog against its integer model (cocotb)", flow=False)
    p.add_argument("--simulator", choices=SIMULATOR_SETTINGS, default=None, help="override verify.simulator")
    p = add("synth", "map each design to EGFET cells (Yosys + ABC), verify the netlist: area, power, delay",
            flow=False)
    p.add_argument("--simulator", choices=SIMULATOR_SETTINGS, default=None,
                   help="override verify.simulator for the gate-level simulation")
    add("report", "write report.json / report.csv and print the summary", flow=False)
    return parser


STAGES = {
    "run": ["train", "explore", "emit", "verify", "synth", "report"],
    "train": ["train"],
    "explore": ["train", "explore"],
    "emit": ["emit"],
    "verify": ["verify"],
    "synth": ["synth"],
    "report": ["report"],
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _run_stages(args, STAGES[args.command])
    except HwmlpError as e:
        err.print(f"hwmlp: error: {e}", markup=False, highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err.print("hwmlp: interrupted", markup=False)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
