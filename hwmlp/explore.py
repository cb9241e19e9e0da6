"""The ``explore`` stage: hardware-aware search from a trained run, and its front files.

:func:`stage_explore` seeds the NSGA-II search (:func:`hwmlp.search.run_search`) with
one integer design of the run (``explore.seed_design``, the exact baseline), selects
designs on a validation split carved from the training data (the test data is
reported, never used for selection), and writes under the run folder:

* ``explore/checkpoint.json``: the search state after every generation (atomic);
  ``resume=True`` continues from it to exactly the uninterrupted result;
* ``designs/front_NN/model.json`` + ``metrics.json`` for at most ``explore.max_designs``
  front designs spread evenly over the front (``NN``: position on the front, cheapest
  modelled design first), so emit, verify, synth and report treat them like any design;
* ``explore/front.json``, ``front.csv`` and ``front.png``: the baseline and every front
  design with validation, fit and test accuracy, modelled area (cm²) and power (mW).

After synthesis :func:`refresh_front` adds each design's synthesized area and power,
marks the designs that are Pareto-optimal on validation accuracy vs synthesized area,
ranks by synthesized area and redraws the plot.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from typing import Callable

import numpy as np

from .errors import HwmlpError
from .flow import DEFAULT_CSD_DIGITS, EXPLORED_PREFIX, Flow
from .io import read_json, write_bytes_atomic, write_json_atomic, write_text_atomic
from .search import Design, GenerationStats, SearchConfig, SearchSpace, WeightSet, run_search, validation_split

CHECKPOINT = "explore/checkpoint.json"
FRONT_JSON = "explore/front.json"
FRONT_CSV = "explore/front.csv"
FRONT_PNG = "explore/front.png"
FRONT_FORMAT = "hwmlp.front"
#: Columns of ``front.csv``: the keys of every design of ``front.json``, in this order.
FRONT_COLUMNS = ("name", "baseline", "emitted", "pareto", "val_accuracy", "fit_accuracy", "test_accuracy",
                 "model_area_cm2", "model_power_mW", "area_cm2", "power_mW")


def weight_set(spec: dict, weight_bits: int) -> WeightSet:
    """The search's weight set from ``explore.weights`` and the seed design's weight width.

    ``fixed``: every ``weight_bits``-bit signed integer (the seed's own grid);
    ``pow2``: zero and ``±2**e``; ``csd``: sums of at most ``digits`` signed powers of two;
    both with ``e <= weight_bits - 1``, so every weight of the seed has a near member.
    """
    if spec["set"] == "fixed":
        return WeightSet.fixed_point(weight_bits)
    if spec["set"] == "pow2":
        return WeightSet.powers_of_two(weight_bits - 1)
    return WeightSet.signed_digits(spec["digits"] or DEFAULT_CSD_DIGITS, weight_bits - 1)


def spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` distinct indices evenly spread over ``0..n-1`` (both ends from k = 2)."""
    return list(range(n)) if k >= n else [round(x) for x in np.linspace(0, n - 1, k)]


def emitted_designs(run) -> list[str]:
    """Names of the explored designs that have a design folder in ``run``, sorted."""
    path = run.path(FRONT_JSON)
    if not path.exists():
        return []
    front = read_json(path, "front record")
    return sorted(d["name"] for d in front["designs"] if d["emitted"] and not d["baseline"])


def discard_front(run) -> None:
    """Remove an earlier search's design folders and front files from ``run`` (not its checkpoint)."""
    for name in emitted_designs(run):
        shutil.rmtree(run.design_dir(name), ignore_errors=True)
    for relative in (FRONT_JSON, FRONT_CSV, FRONT_PNG):
        run.path(relative).unlink(missing_ok=True)


def prepare_resume(flow: Flow, run) -> None:
    """Check that ``run`` holds a search checkpoint written for ``flow`` and record ``flow``.

    Every setting must equal the one the run was started with except
    ``explore.generations`` (a search may be extended), ``explore.max_designs`` (which
    front designs are emitted, chosen after the search) and the ``verify`` and ``synth``
    sections (applied to the designs after the search); raises :class:`HwmlpError`
    otherwise, or when there is no checkpoint.
    """
    checkpoint = run.path(CHECKPOINT)
    if not checkpoint.exists():
        raise HwmlpError(f"no search checkpoint {checkpoint} to resume: run without --resume to start the search")
    saved, given = run.flow_config(), json.loads(json.dumps(flow.config))
    for config in (saved, given):
        config["explore"] = {**config["explore"], "generations": None, "max_designs": None}
        config["verify"] = config["synth"] = None
    key = _first_difference(saved, given, "")
    if key is not None:
        raise HwmlpError(
            f"checkpoint {checkpoint} comes from a different flow ({key} differs): "
            "run without --resume to start afresh, or restore the original flow"
        )
    write_json_atomic(run.path("flow.json"), flow.config)


def _first_difference(a, b, where: str) -> str | None:
    """The dotted key of the first difference between two JSON values (None when equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            found = _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else key)
            if found is not None:
                return found
        return None
    return None if a == b else (where or "flow")


def stage_explore(run, resume: bool = False, progress: Callable[[GenerationStats], None] | None = None) -> dict:
    """Search the run's ``explore`` space from its seed design; write the front designs and files.

    ``run``: a :class:`~hwmlp.pipeline.RunDir` that ``stage_train`` has filled.
    ``resume``: continue from ``explore/checkpoint.json``. ``progress`` receives every
    generation's statistics. Returns the front record (the content of ``front.json``).
    The same flow and seed give the same front, byte for byte, interrupted or not.
    """
    from .pipeline import write_design

    cfg = run.flow_config()
    ex = cfg["explore"]
    seed_design = next(d for d in cfg["designs"] if d["name"] == ex["seed_design"])
    seed = run.model(seed_design["name"])
    split = run.split()
    space = SearchSpace.for_model(seed, weight_set(ex["weights"], seed_design["weight_bits"]),
                                  hidden_bits=ex["hidden_bits"], search_masks=ex["search_masks"])
    config = SearchConfig(
        population=ex["population"], offspring=ex["population"], generations=ex["generations"],
        max_accuracy_loss=float(ex["max_accuracy_loss"]), objective=ex["objective"], seed=cfg["seed"],
        backend=ex["backend"], device=ex["device"],
    )
    try:
        X_fit, y_fit, X_val, y_val = validation_split(split.X_train, split.y_train, ex["validation_size"], cfg["seed"])
    except ValueError as e:  # scikit-learn: a class too rare to stratify, or too few samples
        raise HwmlpError(f"explore.validation_size {ex['validation_size']}: cannot carve a stratified validation "
                         f"split from {len(split.y_train)} training samples ({e})") from None
    discard_front(run)
    result = run_search(seed, X_fit, y_fit, X_val, y_val, space, config,
                        checkpoint=run.path(CHECKPOINT), resume=resume, callback=progress)

    float_test = read_json(run.path("float_model.json"), "float model")["accuracy"]["test"]
    test_accuracy = lambda mlp: mlp.accuracy(split.X_test, split.y_test)  # noqa: E731
    designs = [_entry(seed_design["name"], result.seed, test_accuracy(seed), baseline=True, emitted=True)]
    emitted = set(spread(len(result.front), ex["max_designs"]))
    for k, d in enumerate(result.front):
        name = f"{EXPLORED_PREFIX}{k:02d}"
        if k in emitted:
            write_design(run, name, replace(d.mlp, name=f"{cfg['name']}_{name}"), split, float_test)
        designs.append(_entry(name, d, test_accuracy(d.mlp), baseline=False, emitted=k in emitted))
    last = result.history[-1]
    front = {
        "format": FRONT_FORMAT,
        "version": 1,
        "flow": cfg["name"],
        "seed_design": seed_design["name"],
        "objective": ex["objective"],
        "generations": last.generation,
        "evaluations": last.evaluations,
        "samples": {"fit": len(y_fit), "validation": len(y_val), "test": len(split.y_test)},
        "ranked_by": None,
        "designs": designs,
    }
    _rank_and_write(run, front)
    return front


def _entry(name: str, design: Design, test_accuracy: float, baseline: bool, emitted: bool) -> dict:
    """One design of ``front.json``; synthesized figures and the Pareto mark come later."""
    return {
        "name": name, "baseline": baseline, "emitted": emitted, "pareto": None,
        "val_accuracy": design.val_accuracy, "fit_accuracy": design.fit_accuracy, "test_accuracy": test_accuracy,
        "model_area_cm2": design.area_cm2, "model_power_mW": design.power_mW, "area_cm2": None, "power_mW": None,
    }


def refresh_front(run) -> dict | None:
    """Add synthesized area and power to the run's front files, mark the designs that are
    Pareto-optimal on validation accuracy vs synthesized area, rank by synthesized area
    (designs without synthesis after, by modelled area) and redraw the plot.

    Returns the updated front record, or None when the run has no search. Idempotent.
    """
    path = run.path(FRONT_JSON)
    if not path.exists():
        return None
    front = read_json(path, "front record")
    for d in front["designs"]:
        synth = run.design_dir(d["name"]) / "synth.json"
        if d["emitted"] and synth.exists():
            s = read_json(synth, "synthesis result")
            d["area_cm2"], d["power_mW"] = s["area_cm2"], s["power_mW"]
    _rank_and_write(run, front)
    return front


def _rank_and_write(run, front: dict) -> None:
    """Set ``pareto`` and ``ranked_by``, sort the designs by area, write json, csv and png."""
    real = [d for d in front["designs"] if d["area_cm2"] is not None]
    for d in front["designs"]:
        d["pareto"] = None if d["area_cm2"] is None else not any(_dominates(o, d) for o in real)
    front["ranked_by"] = "area_cm2" if real else "model_area_cm2"
    front["designs"].sort(key=lambda d: (d["area_cm2"] is None, d["area_cm2"] if d["area_cm2"] is not None
                                         else d["model_area_cm2"], -d["val_accuracy"], d["name"]))
    write_json_atomic(run.path(FRONT_JSON), front)
    write_text_atomic(run.path(FRONT_CSV), front_csv(front))
    write_bytes_atomic(run.path(FRONT_PNG), front_png(front))


def _dominates(a: dict, b: dict) -> bool:
    """``a`` is at least as accurate (validation) and small (synthesized area) as ``b``, and better in one."""
    return (a["val_accuracy"] >= b["val_accuracy"] and a["area_cm2"] <= b["area_cm2"]
            and (a["val_accuracy"] > b["val_accuracy"] or a["area_cm2"] < b["area_cm2"]))


def front_csv(front: dict) -> str:
    """``front.csv``: one row per design of the record, :data:`FRONT_COLUMNS`;
    booleans as ``true``/``false``, null as an empty field."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FRONT_COLUMNS)
    cell = lambda v: "" if v is None else (str(v).lower() if isinstance(v, bool) else v)  # noqa: E731
    for d in front["designs"]:
        w.writerow([cell(d[c]) for c in FRONT_COLUMNS])
    return buf.getvalue()


def front_png(front: dict) -> bytes:
    """``front.png``: validation accuracy vs area (cm²) and vs power (mW), log scale.

    Hollow markers: modelled figures of every design; filled: synthesized figures, the
    Pareto-optimal ones (validation accuracy vs area) joined by a line on the area
    panel; the exact baseline is a red star.
    Drawn with matplotlib's Agg canvas (no display, no global backend change).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fig = Figure(figsize=(11, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    designs = front["designs"]
    marker = lambda d: dict(marker="*", s=160) if d["baseline"] else dict(marker="o", s=40)  # noqa: E731
    color = lambda d: "tab:red" if d["baseline"] else "tab:blue"  # noqa: E731
    for ax, figure, unit in zip(fig.subplots(1, 2), ("area_cm2", "power_mW"), ("area (cm²)", "power (mW)")):
        for d in designs:
            ax.scatter(d[f"model_{figure}"], d["val_accuracy"], facecolors="none", edgecolors=color(d), **marker(d))
            if d[figure] is not None:
                ax.scatter(d[figure], d["val_accuracy"], color=color(d), **marker(d))
            at = d[figure] if d[figure] is not None else d[f"model_{figure}"]
            ax.annotate(d["name"], (at, d["val_accuracy"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
        real = [d for d in designs if d[figure] is not None]
        if figure == "area_cm2" and real:
            ax.plot(*zip(*sorted((d[figure], d["val_accuracy"]) for d in real if d["pareto"])),
                    drawstyle="steps-post", color="tab:blue", linewidth=1, label="Pareto-optimal (synthesized)")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(unit)
        ax.set_ylabel("validation accuracy")
        ax.grid(True, which="both", alpha=0.3)
    state = "synthesized (filled) and modelled (hollow)" if any(d["area_cm2"] is not None for d in designs) else "modelled"
    fig.suptitle(f"{front['flow']}: search front, {state}; red star: exact baseline {front['seed_design']}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()
