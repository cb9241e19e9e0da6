"""Calibrate the search's bit-heap cost model against real synthesis of the bitheap generator.

Builds ``--n`` diverse genomes (default 60) over several datasets and search
spaces, emits each with :func:`hwmlp.rtl.to_verilog` (structure ``bitheap``),
synthesizes it (:func:`hwmlp.synth.synthesize`: Yosys + ABC on the EGFET cells)
and records the synthesized area, leakage and power next to the cost model's
component counts. The genomes come from the search itself:

* **search**: designs of the Pareto archive of short :func:`~hwmlp.search.run_search`
  runs (the designs the search produces), spread over the archive's cost range;
* **seed**: the seed genome, a trained and quantized model in the space;
* **mutated**: the seed after a walk of the search's own mutations;
* **sparse**: a hard-pruned copy (:func:`~hwmlp.search.operators.sparse_copy`).

Every design is a usable classifier, as those the search keeps: not one class for
every sample (a constant circuit has no logic), and mutated and sparse ones at most
:data:`LOSS_FLOOR` below the seed's accuracy (a mutation that would break this is
not taken).

The spaces differ in dataset, topology (one and two hidden layers), weight set
(powers of two, two CSD digits, 8-bit fixed point), QReLU slices, masks, sparsity
and argmax bits. Searches run with the *uncalibrated* model, so the set of designs
does not depend on the calibration being fitted.

:func:`~hwmlp.search.fit_calibration` is fitted on a seeded training subset
(two thirds, stratified by space); :func:`~hwmlp.search.agreement` (Spearman rank
correlation, median relative error) is reported on the held-out third and on all
designs, for area (um^2), leakage (nW) and total power (leakage + dynamic, mW:
the model's power is its leakage), with the rank correlation inside every space
(the designs one search compares) and, for comparison, the held-out figures of
finer groupings of the scale factors. ``--write-calibration`` stores the fitted
calibration as the package default (``hwmlp/search/calibration.json``), recorded
with this command and its figures.

Synthesis results are cached under ``--work`` by the hash of the Verilog text,
so a rerun only synthesizes designs whose circuit changed. Everything is seeded:
the same command gives the same designs, circuits and figures.

Usage::

    python bench/calibrate_cost.py [--n 60] [--json PATH] [--work DIR] [--jobs 1] [--write-calibration]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # one core per process: training must not depend on the machine

import argparse
import hashlib
import json
import shlex
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwmlp.data import EMBEDDED, load_csv, load_embedded, prepare
from hwmlp.io import write_json_atomic, write_text_atomic
from hwmlp.quantize import quantize_mlp
from hwmlp.rtl import to_verilog
from hwmlp.search import (
    FEATURES, CostModel, PopulationEvaluator, SearchConfig, SearchSpace, WeightSet, agreement, fit_calibration,
    from_intmlp, run_search, to_intmlp,
)
from hwmlp.search import operators as ops
from hwmlp.search.cost import CALIBRATION_FORMAT, COMPONENT_GROUPS, DEFAULT_CALIBRATION, Calibration
from hwmlp.search.nsga import build_toolbox, validation_split
from hwmlp.synth import synthesize
from hwmlp.train import train_float

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
MIN_DESIGNS = 50
SEED = 0
#: Fraction of every space's designs held out of the fit.
HELD_OUT = 1 / 3
#: Largest accuracy loss (fraction) of a mutated or sparse genome below its seed.
LOSS_FLOOR = 0.10
#: Range of the number of mutations tried on a mutated genome, and tries at a usable sparse copy.
MUTATIONS = (5, 60)
SPARSE_TRIES = 20


@dataclass(frozen=True)
class SpaceSpec:
    """One search space of the calibration set: a dataset (embedded name or CSV file
    under ``shared/datasets``), hidden layer sizes, and a weight set (``pow2``: powers
    of two up to 2**6; ``csd2``: two CSD digits up to 2**7; ``fixed8``: 8-bit fixed
    point), the seed model's quantization following the weight set."""

    dataset: str
    hidden: tuple[int, ...]
    weights: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-{'-'.join(map(str, self.hidden))}-{self.weights}"


SPACES = (
    SpaceSpec("breast_cancer", (3,), "fixed8"),
    SpaceSpec("breast_cancer", (2,), "pow2"),
    SpaceSpec("cardio", (3,), "csd2"),
    SpaceSpec("cardio", (4, 3), "fixed8"),
    SpaceSpec("wine-red", (4,), "csd2"),
    SpaceSpec("wine-red", (3,), "pow2"),
    SpaceSpec("pendigits", (5,), "pow2"),
    SpaceSpec("pendigits", (4,), "csd2"),
    SpaceSpec("seeds", (3,), "fixed8"),
    SpaceSpec("column_3C", (3, 2), "csd2"),
)

#: How fit_calibration groups the components: one area and one leakage factor for the
#: whole model, whose components are already the generator's own gates. The finer
#: groupings are fitted too and reported on the held-out designs, for comparison.
CALIBRATION_GROUPS = dict.fromkeys(FEATURES, "model")
ALTERNATIVE_GROUPS = {"group (heap, activation, argmax)": COMPONENT_GROUPS, "component": None}

#: Genome origins in the order each space contributes them (repeated while designs are needed).
ORIGINS = ("search", "mutated", "search", "seed", "search", "sparse", "mutated")


def load_split(dataset: str):
    """The 4-bit, seeded 70/30 split of an embedded dataset or a ``shared/datasets`` CSV."""
    ds = load_embedded(dataset) if dataset in EMBEDDED else load_csv(DATASETS / f"{dataset}.csv", label="Y")
    return prepare(ds, input_bits=4, test_size=0.3, seed=SEED)


def weight_set(name: str):
    """The :class:`WeightSet` and the seed's quantization scheme of a weight-set name."""
    return {
        "pow2": (WeightSet.powers_of_two(6), "pow2"),
        "csd2": (WeightSet.signed_digits(2, 7), "fixed"),
        "fixed8": (WeightSet.fixed_point(8), "fixed"),
    }[name]


class SpaceDesigns:
    """The genomes one :class:`SpaceSpec` contributes, origin by origin (:data:`ORIGINS`),
    all of them usable classifiers (see the module docstring; accuracy on the fitness data)."""

    def __init__(self, spec: SpaceSpec, index: int):
        self.spec = spec
        split = load_split(spec.dataset)
        float_mlp = train_float(split.X_train / 15.0, split.y_train, list(spec.hidden), split.n_classes,
                                seed=SEED, epochs=300, device="cpu")
        weights, scheme = weight_set(spec.weights)
        self.seed_model = quantize_mlp(float_mlp, 4, weight_bits=8, scheme=scheme, name=spec.dataset)
        self.space = SearchSpace.for_model(self.seed_model, weights, hidden_bits=6, max_lsb=20, max_argmax_drop=12)
        self.seed = from_intmlp(self.seed_model, self.space)
        self.data = validation_split(split.X_train, split.y_train, seed=SEED)
        self.evaluator = PopulationEvaluator(self.space, *self.data[:2])
        self.min_accuracy = float(self.evaluator.accuracy([self.seed])[0]) - LOSS_FLOOR
        self.cost_model = CostModel(calibration=Calibration())  # uncalibrated: designs independent of the fit
        self.rng = np.random.default_rng([SEED, index])
        self.toolbox = build_toolbox(self.space, _search_config(0), self.evaluator, self.cost_model, 0.0, self.rng)
        self._archive: list | None = None

    def usable(self, genome) -> bool:
        """Whether ``genome`` classifies within the loss floor and not as a constant."""
        predictions = self.evaluator.predict([genome])[0]
        return (predictions != predictions[0]).any() and (predictions == self.data[1]).mean() >= self.min_accuracy

    def archive(self) -> list:
        """Genomes of a short search's Pareto archive, in an order spread over its cost range."""
        if self._archive is None:
            config = _search_config(int(self.rng.integers(1 << 30)))
            result = run_search(self.seed_model, *self.data, self.space, config, cost_model=self.cost_model)
            designs = [d for d in sorted(result.archive, key=lambda d: d.area_um2) if self.usable(d.genome)]
            self._archive = [designs[k].genome for k in _spread_order(len(designs))]
        return self._archive

    def genome(self, origin: str, k: int):
        """The ``k``-th genome of ``origin`` (None when the space has no more of them)."""
        if origin == "search":
            archive = self.archive()
            return archive[k] if k < len(archive) else None
        if origin == "seed":
            return self.seed.copy() if k == 0 else None
        if origin == "sparse":
            return next((g for g in (ops.sparse_copy(self.seed, self.space, self.rng) for _ in range(SPARSE_TRIES))
                         if self.usable(g)), None)
        genome = self.seed.copy()  # mutated: a walk of the search's mutations that stays usable
        for _ in range(int(self.rng.integers(MUTATIONS[0], MUTATIONS[1] + 1))):
            child = self.toolbox.mutate(genome.copy())[0]
            if self.usable(child):
                genome = child
        return genome


def _search_config(seed: int):
    return SearchConfig(population=40, offspring=40, generations=40, max_accuracy_loss=0.05, seed=seed)


def _spread_order(n: int) -> list[int]:
    """Indices ``0..n-1`` ordered so that every prefix spreads evenly over the range:
    the extremes, then the midpoint of the widest gap (the highest of equally wide ones)."""
    order = list(dict.fromkeys([0, n - 1]))[:n]
    while len(order) < n:
        points = sorted(order)
        _, a, b = max((b - a, a, b) for a, b in zip(points, points[1:]))
        order.append((a + b) // 2)
    return order


def build_designs(n: int) -> list[dict]:
    """``n`` designs, round robin over :data:`SPACES` and, per space, over :data:`ORIGINS`:
    dicts with the space, origin, genome and integer model."""
    spaces = [SpaceDesigns(spec, k) for k, spec in enumerate(SPACES)]
    picked, seen = [], set()
    used = {(s.spec, o): 0 for s in spaces for o in ORIGINS}
    for round_ in range(n * len(ORIGINS)):
        if len(picked) == n:
            break
        space = spaces[round_ % len(spaces)]
        origin = ORIGINS[(round_ // len(spaces)) % len(ORIGINS)]
        genome = space.genome(origin, used[space.spec, origin])
        used[space.spec, origin] += 1
        if genome is None:
            continue
        key = (space.spec, json.dumps(genome.to_dict()))
        if key in seen:
            continue
        seen.add(key)
        mlp = to_intmlp(genome, space.space, f"cal{len(picked):03d}", space.seed_model.classes)
        picked.append({"space": space, "origin": origin, "genome": genome, "mlp": mlp})
    if len(picked) < n:
        raise SystemExit(f"only {len(picked)} distinct designs could be built, {n} requested")
    return picked


def synthesize_cached(mlp, work: Path) -> dict:
    """Synthesized figures of ``mlp``'s ``bitheap`` circuit: ``area_um2``, ``leakage_nW``,
    ``power_mW`` (leakage + dynamic at the fastest rate, seeded random inputs), ``cells``
    and ``synth_s``; from ``work``'s cache when the same Verilog was synthesized before."""
    verilog = to_verilog(mlp, name="hwmlp_design")
    d = work / hashlib.sha256(verilog.encode()).hexdigest()[:20]
    cached = d / "figures.json"
    if cached.exists():
        return json.loads(cached.read_text())
    write_text_atomic(d / "design.v", verilog)
    r = synthesize(d / "design.v", "hwmlp_design", d / "synth")
    figures = {"area_um2": r.area_um2, "leakage_nW": r.leakage_mW * 1e6, "power_mW": r.power_mW,
               "cells": r.cells, "synth_s": r.runtime_s}
    write_json_atomic(cached, figures)
    return figures


def held_out_mask(spaces: list[str]) -> np.ndarray:
    """Seeded choice of :data:`HELD_OUT` of the designs of every space (at least one)."""
    rng = np.random.default_rng(SEED)
    mask = np.zeros(len(spaces), dtype=bool)
    for name in dict.fromkeys(spaces):
        members = np.flatnonzero(np.array(spaces) == name)
        mask[rng.permutation(members)[: max(1, round(HELD_OUT * len(members)))]] = True
    return mask


def summarize(model_figures: dict, synth_figures: dict, subsets: dict) -> dict:
    """:func:`~hwmlp.search.agreement` of every modelled figure with its synthesized one
    on every subset (name -> boolean mask)."""
    return {subset: {figure: agreement(model_figures[figure][mask], synth_figures[figure][mask])
                     for figure in model_figures}
            for subset, mask in subsets.items()}


def within_space_spearman(predicted: np.ndarray, measured: np.ndarray, spaces: list[str]) -> dict[str, float]:
    """Spearman rank correlation inside every space (the designs one search compares)."""
    names = np.array(spaces)
    return {name: agreement(predicted[names == name], measured[names == name])["spearman"]
            for name in dict.fromkeys(spaces)}


def _figures(report) -> dict[str, np.ndarray]:
    """The modelled figures compared with synthesis: area, leakage and power (= leakage)."""
    return {"area_um2": report.area_um2, "leakage_nW": report.leakage_nW, "power_mW": report.power_mW}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60, help=f"designs to synthesize (>= {MIN_DESIGNS})")
    parser.add_argument("--json", type=Path, help="write the per-design rows and the summary to this JSON file")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "calibrate_cost",
                        help="synthesis folder and cache (default: build/calibrate_cost)")
    parser.add_argument("--jobs", type=int, default=1, help="syntheses run at once")
    parser.add_argument("--write-calibration", action="store_true",
                        help="store the fitted calibration as the package default (hwmlp/search/calibration.json)")
    args = parser.parse_args(argv)
    if args.n < MIN_DESIGNS:
        parser.error(f"--n must be at least {MIN_DESIGNS}")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    start = time.monotonic()
    designs = build_designs(args.n)
    print(f"{len(designs)} designs over {len(SPACES)} spaces built in {time.monotonic() - start:.0f} s; synthesizing",
          flush=True)
    with ThreadPoolExecutor(args.jobs) as pool:
        synthesized = list(pool.map(lambda d: synthesize_cached(d["mlp"], args.work), designs))
    uncalibrated = CostModel(calibration=Calibration())
    counts = np.concatenate([uncalibrated.of_mlp(d["mlp"]).counts for d in designs])
    spaces = [d["space"].spec.name for d in designs]
    held_out = held_out_mask(spaces)
    measured = {f: np.array([s[f] for s in synthesized]) for f in ("area_um2", "leakage_nW", "power_mW")}

    def fit(groups) -> Calibration:
        return fit_calibration(counts[~held_out], measured["area_um2"][~held_out], measured["leakage_nW"][~held_out],
                               groups=groups)

    calibration = fit(CALIBRATION_GROUPS)
    modelled = {name: _figures(model.report(counts))
                for name, model in (("uncalibrated", uncalibrated), ("calibrated", CostModel(calibration=calibration)))}
    subsets = {"held_out": held_out, "all": np.ones(len(designs), dtype=bool)}
    summary = {
        "designs": len(designs),
        "held_out": int(held_out.sum()),
        "datasets": sorted({spec.dataset for spec in SPACES}),
        "spaces": [spec.name for spec in SPACES],
        "calibrated": summarize(modelled["calibrated"], measured, subsets),
        "uncalibrated": summarize(modelled["uncalibrated"], measured, subsets),
        "within_space_spearman_area": within_space_spearman(modelled["calibrated"]["area_um2"],
                                                            measured["area_um2"], spaces),
        "alternative_groupings_held_out": {
            name: summarize(_figures(CostModel(calibration=fit(groups)).report(counts)), measured,
                            {"held_out": held_out})["held_out"]
            for name, groups in ALTERNATIVE_GROUPS.items()
        },
        "calibration": calibration.to_dict(),
        "seconds": time.monotonic() - start,
    }
    rows = [
        {
            "space": spaces[k], "origin": d["origin"], "held_out": bool(held_out[k]),
            "synthesized": synthesized[k],
            "modelled": {f: float(v[k]) for f, v in modelled["calibrated"].items()},
            "components": {f: int(c) for f, c in zip(FEATURES, counts[k]) if c},
            "genome": d["genome"].to_dict(), "space_settings": d["space"].space.to_dict(),
        }
        for k, d in enumerate(designs)
    ]
    print_report(rows, summary)
    command = "python bench/calibrate_cost.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.json:
        write_json_atomic(args.json, {"command": command, "summary": summary, "rows": rows})
    if args.write_calibration:
        write_json_atomic(DEFAULT_CALIBRATION, {
            "format": CALIBRATION_FORMAT, "command": command, "designs": len(designs),
            "fitted_on": int((~held_out).sum()), "datasets": summary["datasets"],
            "agreement": summary["calibrated"], **calibration.to_dict(),
        })
        print(f"calibration written to {DEFAULT_CALIBRATION.relative_to(ROOT)}")


def print_report(rows: list[dict], summary: dict) -> None:
    """The per-design table (synthesized vs calibrated model) and the agreement figures."""
    print(f"\n{'space':26s} {'origin':8s} {'set':4s} {'synth um2':>13s} {'model um2':>13s} {'err':>7s} "
          f"{'synth mW':>9s} {'model mW':>9s} {'err':>7s}")
    for r in rows:
        s, m = r["synthesized"], r["modelled"]
        print(f"{r['space']:26s} {r['origin']:8s} {'test' if r['held_out'] else 'fit':4s} "
              f"{s['area_um2']:13.4g} {m['area_um2']:13.4g} {m['area_um2'] / s['area_um2'] - 1:+7.1%} "
              f"{s['power_mW']:9.3f} {m['power_mW']:9.3f} {m['power_mW'] / s['power_mW'] - 1:+7.1%}")
    print(f"\n{summary['designs']} designs ({summary['held_out']} held out of the fit), datasets "
          f"{', '.join(summary['datasets'])}")
    for model in ("calibrated", "uncalibrated"):
        for subset, figures in summary[model].items():
            line = "  ".join(f"{figure}: rho {a['spearman']:.3f}, median error {a['median_relative_error']:.1%}"
                             for figure, a in figures.items())
            print(f"{model:12s} {subset:8s} {line}")
    within = summary["within_space_spearman_area"]
    print("area rank correlation within each space: "
          + ", ".join(f"{name} {rho:.2f}" for name, rho in within.items()))
    for name, figures in summary["alternative_groupings_held_out"].items():
        print(f"one scale per {name}, held out: " + "  ".join(
            f"{figure}: rho {a['spearman']:.3f}, median error {a['median_relative_error']:.1%}"
            for figure, a in figures.items()))


if __name__ == "__main__":
    main()
