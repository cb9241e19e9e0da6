"""Import of the published exact bespoke MLPs (Mubarik et al., MICRO'20).

The JSON file (``shared/reference/micro20_exact_models.json`` in the project's
workspace) maps model names to integer weights, biases, activation widths, the
published test vectors and the Design Compiler / PrimeTime figures. Semantics:
``h = max(h @ W.T + b, 0)`` per layer (the output layer too when
``relu_on_output``), prediction = first maximum.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HwmlpError
from .intmlp import Activation, IntLayer, IntMLP
from .io import read_json

REQUIRED = ("topology", "input_bits", "weights", "biases", "activation_bits", "relu_on_output",
            "test_X", "test_y", "test_accuracy", "dc_area_um2", "pt_total_power_mW")


@dataclass
class PublishedModel:
    """A published model with its test vectors and the commercial-flow figures."""

    mlp: IntMLP
    test_X: np.ndarray
    test_y: np.ndarray
    test_accuracy: float
    dc_area_um2: float
    pt_power_mW: float
    activation_bits: list[int]


def load_published(path: str | Path) -> dict[str, PublishedModel]:
    """All models in the file, keyed by name, in file order."""
    data = read_json(path, "reference model file", missing_hint=None)
    return {name: _model(name, m) for name, m in data.items()}


def _model(name: str, m: dict) -> PublishedModel:
    missing = [k for k in REQUIRED if k not in m]
    if missing:
        raise HwmlpError(f"published model {name!r} lacks {missing}")
    n_layers = len(m["weights"])
    layers = [
        IntLayer(W, b, Activation.relu() if (k < n_layers - 1 or m["relu_on_output"]) else Activation.identity())
        for k, (W, b) in enumerate(zip(m["weights"], m["biases"]))
    ]
    mlp = IntMLP(m["input_bits"], layers, name=name)
    if mlp.topology != list(m["topology"]):
        raise HwmlpError(f"published model {name!r}: weights give topology {mlp.topology}, file says {m['topology']}")
    # The circuit keeps activation_bits of each ReLU output: only exact if the values fit.
    for k, (r, bits) in enumerate(zip(mlp.value_ranges(), m["activation_bits"])):
        if layers[k].activation.kind == "relu" and max(r.out_hi) >= 1 << bits:
            raise HwmlpError(f"published model {name!r}: layer {k} outputs exceed {bits} bits")
    return PublishedModel(
        mlp, np.asarray(m["test_X"], dtype=np.int64), np.asarray(m["test_y"], dtype=np.int64),
        float(m["test_accuracy"]), float(m["dc_area_um2"]), float(m["pt_total_power_mW"]),
        list(m["activation_bits"]),
    )
