#!/usr/bin/env python3
"""Published exact bespoke MLPs (MICRO'20) through hwmlp's flow, against the commercial figures.

For each of the seven models in ``shared/reference/micro20_exact_models.json``:
import it, check its accuracy equals the recorded ``test_accuracy``, emit RTL,
verify the RTL on the published test vectors with cocotb, synthesize with
Yosys + ABC on the EGFET 1.0 V cells, verify the mapped netlist (gate-level
cocotb simulation on the same vectors, and a formal equivalence proof against
the RTL: :func:`hwmlp.verify.verify_netlist`), and compare area and power with
the recorded Synopsys Design Compiler area and PrimeTime power. Exit status 1
unless every model has its recorded accuracy, 0 RTL and 0 gate-level
mismatches and a proven equivalence.

    python bench/published_exact.py [--json PATH] [--work DIR] [--models A,B]
                                    [--structure {plain,bitheap,bitheap-dadda,best}]

``--structure`` picks the RTL generator (see :mod:`hwmlp.rtl`; default ``bitheap``);
``best`` synthesizes every bit-heap structure and keeps the smallest per model.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwmlp.flow import SIMULATOR_SETTINGS  # noqa: E402
from hwmlp.io import write_json_atomic  # noqa: E402
from hwmlp.reference import load_published  # noqa: E402
from hwmlp.rtl import STRUCTURES, choose_structure, to_verilog, top_name  # noqa: E402
from hwmlp.synth import synthesize  # noqa: E402
from hwmlp.verify import verify, verify_netlist  # noqa: E402

DEFAULT_JSON = REPO.parent / "shared" / "reference" / "micro20_exact_models.json"


def run_model(name: str, pm, work: Path, simulator: str, structure: str) -> dict:
    t0 = time.perf_counter()
    mlp = pm.mlp
    acc = mlp.accuracy(pm.test_X, pm.test_y)
    top = top_name(mlp)
    mdir = work / name
    mdir.mkdir(parents=True, exist_ok=True)
    if structure == "best":
        choice = choose_structure(mlp, mdir / "structures", tuple(s for s in STRUCTURES if s != "plain"), pm.test_X)
        structure, vlog, syn = choice.structure, choice.verilog, choice.result
    else:
        vlog = mdir / f"{top}.v"
        vlog.write_text(to_verilog(mlp, structure=structure))
        syn = synthesize(vlog, top, mdir / "synth", vectors=pm.test_X)
    ver = verify(mlp, vlog, top, pm.test_X, mdir / "sim", simulator=simulator)
    t_netlist = time.perf_counter()
    net = verify_netlist(mlp, vlog, syn, pm.test_X, mdir / "netlist", simulator=simulator)
    return {
        "name": name,
        "structure": structure,
        "topology": mlp.topology,
        "accuracy": acc,
        "expected_accuracy": pm.test_accuracy,
        "vectors": ver.vectors,
        "mismatches": ver.mismatches,
        "gate_mismatches": net.gate_level.mismatches,
        "equivalent": net.equivalence.proven,
        "equiv_status": net.equivalence.status,
        "equiv_seconds": net.equivalence.seconds,
        "netlist_seconds": time.perf_counter() - t_netlist,
        "cells": syn.cells,
        "area_um2": syn.area_um2,
        "dc_area_um2": pm.dc_area_um2,
        "power_mW": syn.power_mW,
        "leakage_mW": syn.leakage_mW,
        "pt_power_mW": pm.pt_power_mW,
        "delay_ns": syn.delay_ns,
        "seconds": time.perf_counter() - t0,
    }


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values))


def print_table(rows: list[dict]) -> None:
    head = f"{'model':<20} {'topology':<9} {'acc':>6} {'ok':>3} {'vec':>4} {'mis':>3} {'gmis':>4} {'equiv':>5} " \
           f"{'eq s':>5} {'cells':>6} {'area cm2':>9} {'DC cm2':>8} {'ratio':>6} {'power mW':>9} {'PT mW':>7} " \
           f"{'ratio':>6} {'s':>5}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['name']:<20} {'-'.join(map(str, r['topology'])):<9} {r['accuracy']:>6.3f} "
            f"{'yes' if r['accuracy'] == r['expected_accuracy'] else 'NO':>3} {r['vectors']:>4} {r['mismatches']:>3} "
            f"{r['gate_mismatches']:>4} {'yes' if r['equivalent'] else 'NO':>5} {r['equiv_seconds']:>5.1f} "
            f"{sum(r['cells'].values()):>6} {r['area_um2'] / 1e8:>9.2f} {r['dc_area_um2'] / 1e8:>8.2f} "
            f"{r['area_um2'] / r['dc_area_um2']:>6.2f} {r['power_mW']:>9.1f} {r['pt_power_mW']:>7.1f} "
            f"{r['power_mW'] / r['pt_power_mW']:>6.2f} {r['seconds']:>5.0f}"
        )
    area = geomean([r["area_um2"] / r["dc_area_um2"] for r in rows])
    power = geomean([r["power_mW"] / r["pt_power_mW"] for r in rows])
    print(f"geometric mean ratio: area {area:.3f}, power {power:.3f}; "
          f"area <= DC on {sum(r['area_um2'] <= r['dc_area_um2'] for r in rows)}/{len(rows)}; "
          f"mismatches {sum(r['mismatches'] for r in rows)} RTL, {sum(r['gate_mismatches'] for r in rows)} gate-level; "
          f"equivalence proven {sum(r['equivalent'] for r in rows)}/{len(rows)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--reference", type=Path, default=DEFAULT_JSON, help="published model file")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "published_exact", help="build folder")
    ap.add_argument("--models", help="comma-separated subset of model names")
    ap.add_argument("--simulator", choices=SIMULATOR_SETTINGS, default="auto")
    ap.add_argument("--structure", choices=(*STRUCTURES, "best"), default="bitheap",
                    help="RTL structure (best: synthesize the bit-heap ones, keep the smallest)")
    args = ap.parse_args(argv)
    models = load_published(args.reference)
    names = args.models.split(",") if args.models else list(models)
    unknown = [n for n in names if n not in models]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; available: {', '.join(models)}")
    rows = []
    for name in names:
        rows.append(run_model(name, models[name], args.work, args.simulator, args.structure))
        print(f"  {name}: {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    print_table(rows)
    if args.json:
        write_json_atomic(args.json, {"models": rows})
    ok = all(
        r["accuracy"] == r["expected_accuracy"] and r["mismatches"] == 0 and r["gate_mismatches"] == 0 and r["equivalent"]
        for r in rows
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
