#!/usr/bin/env python3
"""Area and power of a run's designs under each RTL structure (before/after the bespoke generator).

For every design of an ``hwmlp run`` folder (the flow's designs and the emitted front
designs), synthesize the ``plain`` structure (behavioural ``x * w + ...`` left to
Yosys + ABC) and the ``bitheap`` structure (hwmlp's bespoke arithmetic, the default)
with the same flow, and print both areas and powers and their ratios.

    python bench/front_structures.py RUN_DIR [--json PATH] [--work DIR]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hwmlp.io import write_json_atomic  # noqa: E402
from hwmlp.pipeline import RunDir  # noqa: E402
from hwmlp.rtl import choose_structure  # noqa: E402

STRUCTURES = ("plain", "bitheap")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="an hwmlp run folder (after `hwmlp run` or `hwmlp explore`)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--work", type=Path, default=REPO / "build" / "front_structures", help="build folder")
    args = ap.parse_args(argv)
    run = RunDir(args.run)
    split = run.split()
    rows = []
    print(f"{'design':<10} {'test acc':>8} {'plain cm2':>10} {'bitheap cm2':>12} {'ratio':>6} "
          f"{'plain mW':>9} {'bitheap mW':>11} {'ratio':>6}")
    for name in run.design_names():
        mlp = run.model(name)
        choice = choose_structure(mlp, args.work / name, STRUCTURES, split.X_test)
        plain, bespoke = (choice.results[s] for s in STRUCTURES)
        row = {"name": name, "accuracy": mlp.accuracy(split.X_test, split.y_test),
               **{f"{s}_area_cm2": choice.results[s].area_cm2 for s in STRUCTURES},
               **{f"{s}_power_mW": choice.results[s].power_mW for s in STRUCTURES}}
        rows.append(row)
        print(f"{name:<10} {row['accuracy']:>8.4f} {plain.area_cm2:>10.4f} {bespoke.area_cm2:>12.4f} "
              f"{bespoke.area_cm2 / plain.area_cm2:>6.2f} {plain.power_mW:>9.3f} {bespoke.power_mW:>11.3f} "
              f"{bespoke.power_mW / plain.power_mW:>6.2f}", flush=True)
    area = math.exp(sum(math.log(r["bitheap_area_cm2"] / r["plain_area_cm2"]) for r in rows) / len(rows))
    power = math.exp(sum(math.log(r["bitheap_power_mW"] / r["plain_power_mW"]) for r in rows) / len(rows))
    print(f"geometric mean bitheap/plain: area {area:.3f}, power {power:.3f}")
    if args.json:
        write_json_atomic(args.json, {"designs": rows, "geomean_area_ratio": area, "geomean_power_ratio": power})
    return 0


if __name__ == "__main__":
    sys.exit(main())
