#!/usr/bin/env python3
"""Pareto quality of the hardware-aware search against the exact 8-bit bespoke baseline.

For Breast Cancer, Cardio, Pendigits, RedWine and WhiteWine (``../shared/datasets/``;
4-bit inputs, min-max scaling, 10% stratified test split, seed 0) this runs a whole
``hwmlp run`` per dataset: float training, the exact baseline (8-bit fixed point,
topology :data:`DATASETS`), the NSGA-II search seeded by it, then emit, RTL
verification, synthesis, gate-level and formal netlist verification of the baseline and
of every emitted front design. Designs are selected on a validation split of the
training data; the figures below are test accuracy and synthesized area and power.

Printed per dataset: the baseline, the front, the best area and power reduction
factors at <= 1% and <= 5% test accuracy loss, and the issue's quality target
(a front design at least as accurate and as small). JSON (``--json PATH``)::

    {"datasets": [{"name", "topology", "baseline": {"accuracy", "area_cm2", "power_mW"},
                   "front": [{"name", "accuracy", "area_cm2", "power_mW", "pareto"}],
                   "at_1pct": {"area_reduction", "power_reduction"}, "at_5pct": {...},
                   "target": {"accuracy", "area_cm2", "met"}, "verified", "seconds"}]}

Usage: ``python bench/pareto_quality.py [--json PATH] [--work DIR] [--datasets A,B] [--jobs N] [--reuse]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwmlp.cli import main as hwmlp_main  # noqa: E402
from hwmlp.io import read_json, write_json_atomic, write_text_atomic  # noqa: E402

SHARED = REPO.parent / "shared" / "datasets"

#: Per dataset: CSV file, dropped columns, hidden layer sizes, search settings (over
#: :data:`COMMON_EXPLORE`), and the issue's target (test accuracy >=, area <= cm^2).
#: Power-of-two weights where the search reaches smaller designs than with two CSD digits
#: (Pendigits: measured), and Cardio's own flow budget.
CSD2, POW2 = {"set": "csd", "digits": 2}, {"set": "pow2", "digits": None}
DATASETS = {
    "breast_cancer": dict(csv="breast-cancer-wisconsin.csv", drop=["X1"], hidden=[3],
                          explore=dict(weights=CSD2, population=100, generations=300), target=(0.94, 0.04)),
    "cardio": dict(csv="cardio.csv", drop=[], hidden=[3],
                   explore=dict(weights=CSD2, population=100, generations=800, max_accuracy_loss=0.02),
                   target=(0.87, 0.85)),
    "pendigits": dict(csv="pendigits.csv", drop=[], hidden=[8],
                      explore=dict(weights=POW2, population=200, generations=4000, max_designs=8),
                      target=(0.90, 7.0)),
    "redwine": dict(csv="wine-red.csv", drop=[], hidden=[3],
                    explore=dict(weights=CSD2, population=100, generations=500), target=(0.52, 0.04)),
    "whitewine": dict(csv="wine-white.csv", drop=[], hidden=[2],
                      explore=dict(weights=CSD2, population=100, generations=600), target=(0.515, 0.15)),
}

#: Settings shared by every dataset: a loss budget wide enough for the 5% figures and
#: enough emitted designs to cover the front. Verification uses the flow default
#: ``verify.simulator: auto`` (Icarus for small designs, Verilator for the large baselines).
COMMON_EXPLORE = dict(max_accuracy_loss=0.07, max_designs=10)


def flow_config(name: str) -> dict:
    """The flow ``hwmlp run`` gets for dataset ``name``."""
    d = DATASETS[name]
    return {
        "name": name,
        "seed": 0,
        "data": {"csv": str(SHARED / d["csv"]), "label": "Y", "drop": d["drop"], "input_bits": 4, "test_size": 0.1},
        "model": {"hidden": d["hidden"]},
        "designs": [{"name": "fixed8", "scheme": "fixed", "weight_bits": 8}],
        "explore": {**COMMON_EXPLORE, **d["explore"]},
    }


def best_reduction(baseline: dict, front: list[dict], loss: float) -> dict:
    """Largest baseline/design area and power ratios over front designs whose test accuracy
    is at most ``loss`` below the baseline's (None when no design qualifies). A design
    without gates (a constant classifier) has no finite ratio and is left out."""
    ok = [f for f in front if f["accuracy"] >= baseline["accuracy"] - loss - 1e-12 and f["area_cm2"] > 0]
    if not ok:
        return {"area_reduction": None, "power_reduction": None}
    return {
        "area_reduction": baseline["area_cm2"] / min(f["area_cm2"] for f in ok),
        "power_reduction": baseline["power_mW"] / min(f["power_mW"] for f in ok),
    }


def run_dataset(name: str, work: Path, reuse: bool = False) -> dict:
    """``hwmlp run`` for one dataset; its baseline, front and reduction factors.

    ``reuse``: when ``work/name`` holds a finished run of the same flow (every emitted
    design synthesized), read its figures instead of running again; when it holds a
    search checkpoint of a flow that differs at most in ``generations`` and
    ``max_designs``, continue that search (``hwmlp run --resume``)."""
    start = time.perf_counter()
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    flow_path, flow_text = out / "flow.yaml", yaml.safe_dump(flow_config(name), sort_keys=False)
    reused = reuse and _finished(out, flow_text)
    if not reused:
        resume = reuse and (out / "run" / "explore" / "checkpoint.json").is_file()
        write_text_atomic(flow_path, flow_text)
        code = hwmlp_main(["run", str(flow_path), "--out", str(out / "run"), *(["--resume"] if resume else [])])
        if code != 0:
            raise SystemExit(f"hwmlp run failed on {name} (exit {code})")
    front = read_json(out / "run" / "explore" / "front.json", "front record")
    report = read_json(out / "run" / "report.json", "report")
    verified = {d["name"]: _verified(d) for d in report["designs"]}
    base = next(d for d in front["designs"] if d["baseline"])
    baseline = {"accuracy": base["test_accuracy"], "area_cm2": base["area_cm2"], "power_mW": base["power_mW"]}
    designs = [
        {"name": d["name"], "accuracy": d["test_accuracy"], "area_cm2": d["area_cm2"], "power_mW": d["power_mW"],
         "val_accuracy": d["val_accuracy"], "pareto": d["pareto"]}
        for d in front["designs"] if not d["baseline"] and d["area_cm2"] is not None
    ]
    acc, area = DATASETS[name]["target"]
    return {
        "name": name,
        "topology": report["designs"][0]["topology"],
        "baseline": baseline,
        "front": designs,
        "at_1pct": best_reduction(baseline, designs, 0.01),
        "at_5pct": best_reduction(baseline, designs, 0.05),
        "target": {"accuracy": acc, "area_cm2": area,
                   "met": any(f["accuracy"] >= acc and f["area_cm2"] <= area for f in designs)},
        "verified": all(verified.values()) and len(verified) == len(designs) + 1,
        "generations": front["generations"],
        "evaluations": front["evaluations"],
        "reused": reused,
        "seconds": time.perf_counter() - start,
    }


def _finished(out: Path, flow_text: str) -> bool:
    """``out`` holds a run of exactly this flow whose emitted designs were all synthesized."""
    front = out / "run" / "explore" / "front.json"
    if not (out / "flow.yaml").is_file() or (out / "flow.yaml").read_text() != flow_text or not front.is_file():
        return False
    return all(d["area_cm2"] is not None for d in read_json(front, "front record")["designs"] if d["emitted"])


def _verified(design: dict) -> bool:
    """RTL simulation, gate-level simulation and formal equivalence all passed."""
    rtl = design.get("verification", {}).get("mismatches") == 0
    net = design.get("netlist_verification", {})
    return rtl and net.get("mismatches") == 0 and net.get("proven") is True


def _factor(x) -> str:
    return "-" if x is None else f"{x:.1f}x"


def print_dataset(r: dict) -> None:
    b = r["baseline"]
    took = "reused" if r["reused"] else f"{r['seconds']:.0f} s"
    print(f"\n{r['name']} {'-'.join(map(str, r['topology']))}: {r['generations']} generations, "
          f"{r['evaluations']} evaluations, {took}, verified: {'yes' if r['verified'] else 'NO'}")
    print(f"  {'design':<10} {'test acc':>8} {'area cm2':>9} {'power mW':>9}  pareto")
    print(f"  {'baseline':<10} {b['accuracy']:>8.4f} {b['area_cm2']:>9.4f} {b['power_mW']:>9.3f}")
    for f in r["front"]:
        print(f"  {f['name']:<10} {f['accuracy']:>8.4f} {f['area_cm2']:>9.4f} {f['power_mW']:>9.3f}  "
              f"{'*' if f['pareto'] else ''}")
    for key, label in (("at_1pct", "<= 1%"), ("at_5pct", "<= 5%")):
        red = r[key]
        print(f"  reduction at {label} loss: area {_factor(red['area_reduction'])}, "
              f"power {_factor(red['power_reduction'])}")
    t = r["target"]
    print(f"  target acc >= {t['accuracy']:.3f} at <= {t['area_cm2']} cm2: {'met' if t['met'] else 'NOT met'}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "pareto_quality", help="build folder")
    ap.add_argument("--datasets", help=f"comma-separated subset of {', '.join(DATASETS)}")
    ap.add_argument("--jobs", type=int, default=1, help="datasets run in parallel processes")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse a dataset's finished run in the work folder when its flow is unchanged, "
                         "or continue its search checkpoint when only generations/max_designs grew")
    args = ap.parse_args(argv)
    names = args.datasets.split(",") if args.datasets else list(DATASETS)
    unknown = [n for n in names if n not in DATASETS]
    if unknown:
        ap.error(f"unknown dataset(s) {unknown}; available: {', '.join(DATASETS)}")
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        rows = list(pool.map(run_dataset, names, [args.work] * len(names), [args.reuse] * len(names)))
    for r in rows:
        print_dataset(r)
    if args.json:
        write_json_atomic(args.json, {"datasets": rows})
    return 0 if all(r["verified"] and r["target"]["met"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
