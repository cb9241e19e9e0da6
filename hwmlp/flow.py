"""YAML flow files: schema, defaults and validation.

A flow names a dataset, a reference model and the integer designs to derive
from it, the hardware-aware search (``explore``) seeded by one of them, plus
verification and synthesis settings. Every key is checked:
an unknown key, a wrong type or an impossible value stops with a one-line
:class:`HwmlpError` naming the key. Paths in a flow are relative to the flow file.
See the README ("Flow file format") for the user-facing description.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import yaml

from .data import EMBEDDED, MISSING_POLICIES, check_input_bits
from .errors import HwmlpError
from .quantize import SCHEMES, check_weight_bits
from .search.nsga import OBJECTIVES

#: Simulators hwmlp verifies with; ``verify.simulator`` may also be ``"auto"``
#: (chosen per design, see :func:`hwmlp.verify.choose_simulator`).
SIMULATORS = ("verilator", "icarus")
SIMULATOR_SETTINGS = ("auto", *SIMULATORS)
#: Weight sets of ``explore.weights.set`` (see :func:`hwmlp.explore.weight_set`).
WEIGHT_SETS = ("pow2", "csd", "fixed")
#: Names of the designs the search emits: ``front_00``, ``front_01``, ...
EXPLORED_PREFIX = "front_"

#: Defaults; also the schema: a key absent here is unknown. ``None`` = optional.
DEFAULTS: dict = {
    "name": None,
    "seed": 0,
    "data": {
        "dataset": None,  # embedded scikit-learn dataset
        "csv": None,  # CSV file with a label column
        "train": None,  # pre-quantized integer CSV files (with test)
        "test": None,
        "label": "Y",
        "separator": None,
        "drop": [],
        "missing": "error",
        "input_bits": 4,
        "test_size": 0.3,
    },
    "model": {
        "hidden": [3],
        "epochs": 2000,
        "lr": 0.01,
        "weight_decay": 0.0001,
        "device": "auto",
        "relu_on_output": False,
    },
    "designs": [{"name": "fixed8", "scheme": "fixed", "weight_bits": 8}],
    "explore": {
        "enabled": True,  # whether `hwmlp run` includes the search
        "seed_design": None,  # null: the first fixed-point design (else the first design)
        "weights": {"set": "csd", "digits": None},  # digits: csd only, null = 2
        "population": 64,  # survivors and children per generation
        "generations": 500,
        "max_accuracy_loss": 0.02,
        "objective": "area",
        "validation_size": 0.2,
        "max_designs": 4,
        "search_masks": True,
        "hidden_bits": 8,
        "backend": "numpy",
        "device": "cpu",
    },
    "verify": {"simulator": "auto", "random_vectors": 1000},
    "synth": {"enabled": True, "evaluation_rate_hz": None},
}

#: Nonzero CSD digits per weight of ``explore.weights`` ``set: csd`` when ``digits`` is null.
DEFAULT_CSD_DIGITS = 2

@dataclass
class Flow:
    """A validated flow: ``config`` holds every key with defaults filled in."""

    path: Path
    config: dict

    @property
    def name(self) -> str:
        return self.config["name"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    def __getitem__(self, key):
        return self.config[key]

    def resolve(self, relative: str) -> Path:
        """A path from the flow, relative to the flow file's folder."""
        p = Path(relative).expanduser()
        return p if p.is_absolute() else (self.path.parent / p)


def load_flow(path: str | Path, seed: int | None = None) -> Flow:
    """Read and validate a flow file (``yaml.safe_load`` only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HwmlpError(f"flow file {path} not found") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise HwmlpError(f"flow file {path} is not a readable text file") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise HwmlpError(f"flow file {path} is not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if raw is None:
        raw = {}
    config = _merge(DEFAULTS, raw, "flow")
    if config["name"] is None:
        config["name"] = path.stem
    if seed is not None:
        config["seed"] = seed
    _validate(config)
    return Flow(path, config)


def _merge(defaults: dict, given, where: str) -> dict:
    if not isinstance(given, dict):
        raise HwmlpError(f"{where} must be a mapping of keys to values, got {type(given).__name__}")
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise HwmlpError(f"unknown key {unknown[0]!r} in {where}; allowed: {', '.join(defaults)}")
    out = copy.deepcopy(defaults)
    for k, v in given.items():
        if isinstance(defaults[k], dict):
            out[k] = _merge(defaults[k], v if v is not None else {}, f"{where}.{k}")
        else:
            out[k] = v
    return out


def _expect(value, types, key: str):
    if isinstance(value, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise HwmlpError(f"{key} must be {_type_names(types)}, got {value!r}")
    if not isinstance(value, types):
        raise HwmlpError(f"{key} must be {_type_names(types)}, got {value!r}")
    return value


def _type_names(types) -> str:
    types = types if isinstance(types, tuple) else (types,)
    names = {int: "an integer", float: "a number", str: "a string", list: "a list", bool: "true or false", type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _validate(c: dict) -> None:
    _expect(c["name"], str, "name")
    _expect(c["seed"], int, "seed")
    d = c["data"]
    sources = [k for k in ("dataset", "csv", "train") if d[k] is not None]
    if len(sources) != 1:
        raise HwmlpError("data needs exactly one source: dataset (embedded), csv, or train + test")
    if d["dataset"] is not None and d["dataset"] not in EMBEDDED:
        raise HwmlpError(f"unknown dataset {d['dataset']!r}: embedded datasets are {', '.join(EMBEDDED)}")
    if (d["train"] is None) != (d["test"] is None):
        raise HwmlpError("pre-quantized data needs both data.train and data.test files")
    for key in ("csv", "train", "test", "separator"):
        _expect(d[key], (str, type(None)), f"data.{key}")
    _expect(d["label"], str, "data.label")
    _expect(d["drop"], list, "data.drop")
    if d["missing"] not in MISSING_POLICIES:
        raise HwmlpError(f"data.missing must be one of {', '.join(MISSING_POLICIES)}, got {d['missing']!r}")
    check_input_bits(d["input_bits"])
    _expect(d["test_size"], (int, float), "data.test_size")
    if not 0 < d["test_size"] < 1:
        raise HwmlpError(f"data.test_size must lie strictly between 0 and 1, got {d['test_size']}")
    m = c["model"]
    hidden = _expect(m["hidden"], list, "model.hidden")
    if not all(isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in hidden):
        raise HwmlpError(f"model.hidden must list positive layer sizes, got {hidden!r}")
    if _expect(m["epochs"], int, "model.epochs") < 1:
        raise HwmlpError("model.epochs must be at least 1")
    _expect(m["lr"], (int, float), "model.lr")
    _expect(m["weight_decay"], (int, float), "model.weight_decay")
    if m["device"] not in ("auto", "cpu", "cuda"):
        raise HwmlpError(f"model.device must be auto, cpu or cuda, got {m['device']!r}")
    _expect(m["relu_on_output"], bool, "model.relu_on_output")
    designs = _expect(c["designs"], list, "designs")
    if not designs:
        raise HwmlpError("designs must list at least one design")
    names = set()
    for k, des in enumerate(designs):
        where = f"designs[{k}]"
        des = _merge({"name": None, "scheme": "fixed", "weight_bits": 8}, des, where)
        designs[k] = des
        if des["name"] is None:
            des["name"] = f"{des['scheme']}{des['weight_bits']}"
        name = _expect(des["name"], str, f"{where}.name")
        if not name or not all(ch.isalnum() or ch in "_-" for ch in name):
            raise HwmlpError(f"{where}.name {name!r} must use only letters, digits, '_' and '-'")
        if name in names:
            raise HwmlpError(f"two designs are named {name!r}: names must be unique")
        if name.startswith(EXPLORED_PREFIX):
            raise HwmlpError(f"{where}.name {name!r}: names starting with {EXPLORED_PREFIX!r} are reserved for explored designs")
        names.add(name)
        if des["scheme"] not in SCHEMES:
            raise HwmlpError(f"{where}.scheme must be one of {', '.join(SCHEMES)}, got {des['scheme']!r}")
        check_weight_bits(des["weight_bits"])
    _validate_explore(c["explore"], designs)
    v = c["verify"]
    if v["simulator"] not in SIMULATOR_SETTINGS:
        raise HwmlpError(f"verify.simulator must be one of {', '.join(SIMULATOR_SETTINGS)}, got {v['simulator']!r}")
    if _expect(v["random_vectors"], int, "verify.random_vectors") < 0:
        raise HwmlpError("verify.random_vectors must be >= 0")
    s = c["synth"]
    _expect(s["enabled"], bool, "synth.enabled")
    rate = _expect(s["evaluation_rate_hz"], (int, float, type(None)), "synth.evaluation_rate_hz")
    if rate is not None and rate <= 0:
        raise HwmlpError("synth.evaluation_rate_hz must be positive")


def _validate_explore(e: dict, designs: list[dict]) -> None:
    """Check ``explore`` and fill in ``seed_design`` (designs are validated already)."""
    _expect(e["enabled"], bool, "explore.enabled")
    names = [d["name"] for d in designs]
    if e["seed_design"] is None:
        e["seed_design"] = next((d["name"] for d in designs if d["scheme"] == "fixed"), names[0])
    elif _expect(e["seed_design"], str, "explore.seed_design") not in names:
        raise HwmlpError(f"explore.seed_design {e['seed_design']!r} is not one of the designs: {', '.join(names)}")
    w = e["weights"]
    if w["set"] not in WEIGHT_SETS:
        raise HwmlpError(f"explore.weights.set must be one of {', '.join(WEIGHT_SETS)}, got {w['set']!r}")
    if w["digits"] is not None:
        if w["set"] != "csd":
            raise HwmlpError(f"explore.weights.digits applies to set: csd only, not {w['set']}")
        if _expect(w["digits"], int, "explore.weights.digits") < 1:
            raise HwmlpError(f"explore.weights.digits must be at least 1, got {w['digits']}")
    if _expect(e["population"], int, "explore.population") < 2:
        raise HwmlpError(f"explore.population must be at least 2, got {e['population']}")
    if _expect(e["generations"], int, "explore.generations") < 0:
        raise HwmlpError(f"explore.generations must be >= 0, got {e['generations']}")
    if not 0 <= _expect(e["max_accuracy_loss"], (int, float), "explore.max_accuracy_loss") <= 1:
        raise HwmlpError(f"explore.max_accuracy_loss must be a fraction in [0, 1], got {e['max_accuracy_loss']}")
    if e["objective"] not in OBJECTIVES:
        raise HwmlpError(f"explore.objective must be one of {', '.join(OBJECTIVES)}, got {e['objective']!r}")
    if not 0 < _expect(e["validation_size"], (int, float), "explore.validation_size") < 1:
        raise HwmlpError(f"explore.validation_size must lie strictly between 0 and 1, got {e['validation_size']}")
    if _expect(e["max_designs"], int, "explore.max_designs") < 0:
        raise HwmlpError(f"explore.max_designs must be >= 0, got {e['max_designs']}")
    _expect(e["search_masks"], bool, "explore.search_masks")
    if not 1 <= _expect(e["hidden_bits"], int, "explore.hidden_bits") <= 16:
        raise HwmlpError(f"explore.hidden_bits must be 1..16, got {e['hidden_bits']}")
    if e["backend"] not in ("numpy", "torch"):
        raise HwmlpError(f"explore.backend must be numpy or torch, got {e['backend']!r}")
    if e["device"] not in ("auto", "cpu", "cuda"):
        raise HwmlpError(f"explore.device must be auto, cpu or cuda, got {e['device']!r}")
    if e["backend"] == "numpy" and e["device"] != "cpu":
        raise HwmlpError(f"explore.device {e['device']} needs backend: torch (numpy runs on the CPU)")
