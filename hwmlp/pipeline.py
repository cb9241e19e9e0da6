"""The end-to-end flow as stages over a run folder.

Each stage reads the artefacts of the previous ones from the run folder and
writes its own (atomically), so any stage can be re-run on its own:

==========  ==========================================================================
stage       writes (under the run folder)
==========  ==========================================================================
train       ``flow.json`` (validated flow), ``data.npz`` (quantized split),
            ``preprocess.json``, ``float_model.json``,
            ``designs/<name>/model.json`` + ``metrics.json``
explore     ``explore/checkpoint.json``, ``front.json``/``.csv``/``.png``,
            ``designs/front_NN/model.json`` + ``metrics.json`` (:mod:`hwmlp.explore`)
emit        ``designs/<name>/<top>.v``
verify      ``designs/<name>/verification.json`` (+ ``sim/`` build folder)
synth       ``designs/<name>/synth.json``, ``netlist_verification.json`` (+ ``synth/``
            with netlists, logs, ``gate_sim/`` and ``equiv/``)
report      ``report.json``, ``report.csv``
==========  ==========================================================================
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import QuantizedSplit, load_csv, load_embedded, load_integer_split, prepare
from .errors import HwmlpError
from .flow import Flow
from .intmlp import IntMLP
from .io import inside, read_json, write_bytes_atomic, write_json_atomic, write_text_atomic
from .quantize import quantize_mlp
from .train import train_float

REPORT_FORMAT = "hwmlp.report"


@dataclass
class RunDir:
    """A run folder: every output of a flow lives below ``root``."""

    root: Path

    def __post_init__(self):
        self.root = Path(self.root)

    def path(self, relative: str) -> Path:
        return inside(self.root, relative)

    def flow_config(self) -> dict:
        return read_json(self.path("flow.json"), "flow record")

    def design_names(self) -> list[str]:
        """The flow's designs, then the explored designs the search emitted (sorted)."""
        from .explore import emitted_designs

        return [d["name"] for d in self.flow_config()["designs"]] + emitted_designs(self)

    def design_dir(self, name: str) -> Path:
        return self.path(f"designs/{name}")

    def model(self, name: str) -> IntMLP:
        path = self.design_dir(name) / "model.json"
        if not path.exists():
            raise HwmlpError(f"{path} not found: run `hwmlp train` first")
        return IntMLP.load(path)

    def split(self) -> QuantizedSplit:
        path = self.path("data.npz")
        if not path.exists():
            raise HwmlpError(f"{path} not found: run `hwmlp train` first")
        pre = read_json(self.path("preprocess.json"), "preprocessing record")
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in ("X_train", "y_train", "X_test", "y_test")}
        return QuantizedSplit(
            pre["dataset"], pre["input_bits"], **arrays,
            feature_names=pre["feature_names"], classes=pre["classes"],
        )

    def verilog(self, name: str) -> Path:
        from .rtl import top_name

        return self.design_dir(name) / f"{top_name(self.model(name))}.v"


def load_split(flow: Flow) -> QuantizedSplit:
    """The quantized train/test split described by the flow's ``data`` section."""
    d = flow["data"]
    opts = dict(label=d["label"], separator=d["separator"], drop=d["drop"])
    if d["train"] is not None:
        return load_integer_split(flow.resolve(d["train"]), flow.resolve(d["test"]), d["input_bits"], name=flow.name, **opts)
    if d["dataset"] is not None:
        ds = load_embedded(d["dataset"])
    else:
        ds = load_csv(flow.resolve(d["csv"]), missing=d["missing"], **opts)
    return prepare(ds, d["input_bits"], d["test_size"], flow.seed)


# ----- stages ----------------------------------------------------------------


def stage_train(flow: Flow, run: RunDir, progress=None) -> None:
    """Load and quantize the data, train the float model, derive every integer design.
    An earlier search's front designs and files are removed (they came from the old model)."""
    from .explore import discard_front

    split = load_split(flow)
    discard_front(run)
    write_json_atomic(run.path("flow.json"), flow.config)
    buf = io.BytesIO()
    np.savez(buf, X_train=split.X_train, y_train=split.y_train, X_test=split.X_test, y_test=split.y_test)
    write_bytes_atomic(run.path("data.npz"), buf.getvalue())
    write_json_atomic(run.path("preprocess.json"), split.preprocessing())
    m = flow["model"]
    scale = float((1 << split.input_bits) - 1)
    fmlp = train_float(
        split.X_train / scale, split.y_train, m["hidden"], split.n_classes, seed=flow.seed,
        epochs=m["epochs"], lr=float(m["lr"]), weight_decay=float(m["weight_decay"]), device=m["device"],
    )
    float_acc = {"train": fmlp.accuracy(split.X_train / scale, split.y_train), "test": fmlp.accuracy(split.X_test / scale, split.y_test)}
    write_json_atomic(run.path("float_model.json"), {
        "topology": fmlp.topology, "accuracy": float_acc,
        "weights": [w.tolist() for w in fmlp.weights], "biases": [b.tolist() for b in fmlp.biases],
    })
    for des in flow["designs"]:
        mlp = quantize_mlp(
            fmlp, split.input_bits, des["weight_bits"], des["scheme"],
            name=f"{flow.name}_{des['name']}", classes=split.classes, relu_on_output=m["relu_on_output"],
        )
        write_design(run, des["name"], mlp, split, float_acc["test"])
        if progress:
            progress(des["name"])


def write_design(run: RunDir, name: str, mlp: IntMLP, split: QuantizedSplit, float_test: float) -> None:
    """Write design ``name``'s integer model and its accuracy on ``split`` (with the float
    model's test accuracy ``float_test``) to ``designs/<name>/``."""
    ddir = run.design_dir(name)
    mlp.save(ddir / "model.json")
    write_json_atomic(ddir / "metrics.json", {
        "accuracy": {"train": mlp.accuracy(split.X_train, split.y_train), "test": mlp.accuracy(split.X_test, split.y_test)},
        "float_accuracy": float_test,
        "topology": mlp.topology,
    })


def stage_emit(run: RunDir, progress=None) -> None:
    """Write each design's Verilog (byte-identical for an identical model)."""
    from .rtl import to_verilog

    for name in run.design_names():
        mlp = run.model(name)
        write_text_atomic(run.verilog(name), to_verilog(mlp))
        if progress:
            progress(name)


def stage_verify(run: RunDir, simulator: str | None = None, progress=None) -> None:
    """Simulate each design's Verilog on its verification vectors against the IntMLP."""
    from .rtl import top_name
    from .verify import verify

    cfg = run.flow_config()
    sim = simulator or cfg["verify"]["simulator"]
    split = run.split()
    for name in run.design_names():
        mlp = run.model(name)
        vlog = _require_verilog(run, name)
        X = _verification_vectors(cfg, split, mlp)
        result = verify(mlp, vlog, top_name(mlp), X, run.design_dir(name) / "sim", simulator=sim)
        write_json_atomic(run.design_dir(name) / "verification.json", result.to_dict())
        if result.mismatches:
            first = result.first_mismatches[0] if result.first_mismatches else {}
            raise HwmlpError(
                f"design {name}: RTL differs from the integer model on {result.mismatches} of "
                f"{result.vectors} vectors (first: {first}); this is a bug in hwmlp, please report it"
            )
        if progress:
            progress(name)


def stage_synth(run: RunDir, progress=None, simulator: str | None = None) -> None:
    """Map each design onto the EGFET cells with Yosys + ABC (area, power, delay), then
    verify the mapped netlist: gate-level simulation on the vectors ``verify`` uses
    (with ``simulator``, default ``verify.simulator``) and a formal equivalence proof
    against the RTL (:func:`hwmlp.verify.verify_netlist`), recorded in
    ``netlist_verification.json``. Raises :class:`HwmlpError` when a netlist fails either."""
    from .rtl import top_name
    from .synth import synthesize
    from .verify import verify_netlist

    cfg = run.flow_config()
    sim = simulator or cfg["verify"]["simulator"]
    split = run.split()
    for name in run.design_names():
        mlp = run.model(name)
        vlog = _require_verilog(run, name)
        ddir = run.design_dir(name)
        result = synthesize(
            vlog, top_name(mlp), ddir / "synth",
            vectors=split.X_test, evaluation_rate_hz=cfg["synth"]["evaluation_rate_hz"],
        )
        write_json_atomic(ddir / "synth.json", result.to_dict())
        X = _verification_vectors(cfg, split, mlp)
        check = verify_netlist(mlp, vlog, result, X, ddir / "synth", simulator=sim)
        write_json_atomic(ddir / "netlist_verification.json", check.to_dict())
        if not check.passed:
            raise HwmlpError(
                f"design {name}: the mapped netlist differs from its model: {check.failure()}; "
                "this is a bug in hwmlp or Yosys, please report it"
            )
        if progress:
            progress(name)


def _verification_vectors(cfg: dict, split: QuantizedSplit, mlp: IntMLP) -> np.ndarray:
    """The input vectors both the RTL and the netlist of ``mlp`` are checked on."""
    from .verify import verification_vectors

    return verification_vectors(mlp, split.X_test, cfg["verify"]["random_vectors"], cfg["seed"])


def _require_verilog(run: RunDir, name: str) -> Path:
    vlog = run.verilog(name)
    if not vlog.exists():
        raise HwmlpError(f"{vlog} not found: run `hwmlp emit` first")
    return vlog


REPORT_KEYS = ("area_cm2", "area_um2", "power_mW", "leakage_mW", "dynamic_mW", "delay_ns", "cells", "batteries")


def stage_report(run: RunDir) -> dict:
    """Collect every design's metrics, verification, synthesis and netlist verification
    into report.json/.csv."""
    designs = []
    for name in run.design_names():
        ddir = run.design_dir(name)
        metrics = read_json(ddir / "metrics.json", "metrics")
        entry = {
            "name": name,
            "topology": metrics["topology"],
            "accuracy": metrics["accuracy"],
            "float_accuracy": metrics["float_accuracy"],
        }
        synth = ddir / "synth.json"
        if synth.exists():
            s = json.loads(synth.read_text())
            entry.update({k: s[k] for k in REPORT_KEYS if k in s})
        ver = ddir / "verification.json"
        if ver.exists():
            v = json.loads(ver.read_text())
            entry["verification"] = {k: v[k] for k in ("simulator", "vectors", "mismatches")}
        nv = ddir / "netlist_verification.json"
        if nv.exists():
            n = json.loads(nv.read_text())
            gate, eq = n["gate_level"], n["equivalence"]
            entry["netlist_verification"] = {
                "passed": n["passed"], "simulator": gate["simulator"], "vectors": gate["vectors"],
                "mismatches": gate["mismatches"], "proven": eq["proven"], "equivalence": eq["status"],
            }
        vlog = run.verilog(name)
        if vlog.exists():
            entry["verilog"] = vlog.relative_to(run.root.resolve()).as_posix()
        designs.append(entry)
    report = {"format": REPORT_FORMAT, "version": 1, "flow": run.flow_config()["name"], "designs": designs}
    write_json_atomic(run.path("report.json"), report)
    write_text_atomic(run.path("report.csv"), _report_csv(designs))
    return report


def _report_csv(designs: list[dict]) -> str:
    cols = ["name", "train_accuracy", "test_accuracy", "float_accuracy", "area_cm2", "power_mW",
            "leakage_mW", "delay_ns", "mismatches", "gate_mismatches", "equivalent", "verilog"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for d in designs:
        w.writerow([
            d["name"], d["accuracy"]["train"], d["accuracy"]["test"], d["float_accuracy"],
            d.get("area_cm2", ""), d.get("power_mW", ""), d.get("leakage_mW", ""), d.get("delay_ns", ""),
            d.get("verification", {}).get("mismatches", ""),
            d.get("netlist_verification", {}).get("mismatches", ""),
            d.get("netlist_verification", {}).get("proven", ""), d.get("verilog", ""),
        ])
    return buf.getvalue()

