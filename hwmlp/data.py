"""Datasets: loading, splitting, scaling and n-bit input quantization.

Three sources:

* an embedded scikit-learn dataset by name (:data:`EMBEDDED`), no download;
* a CSV file with a label column (separator, dropped columns, missing-value
  policy); labels are remapped to ``0..K-1`` and the mapping is kept in
  :attr:`Dataset.classes`;
* pre-quantized integer datasets as separate train and test CSV files (values
  already come from an ADC: no scaling, no re-quantization).

:func:`prepare` turns a :class:`Dataset` into a :class:`QuantizedSplit`: a
stratified, seeded train/test split, min-max scaling fitted on the training split
only, then unsigned ``input_bits`` quantization with clipping of unseen values.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import HwmlpError

EMBEDDED = ("breast_cancer", "iris", "wine", "digits")
MISSING_POLICIES = ("error", "drop", "impute")


@dataclass
class Dataset:
    """Float features ``X`` (N, F) with NaN for missing values, labels ``y`` in 0..K-1."""

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    classes: list
    missing: str = "error"

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class QuantizedSplit:
    """Unsigned ``input_bits``-bit integer features with a train/test split.

    ``scale_min``/``scale_max`` are the per-feature min-max scaling bounds fitted on
    the training split (None for pre-quantized data).
    """

    name: str
    input_bits: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: list[str]
    classes: list
    scale_min: np.ndarray | None = None
    scale_max: np.ndarray | None = None
    impute_values: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def quantize(self, X: np.ndarray) -> np.ndarray:
        """Quantize new raw samples exactly as the training data was."""
        if self.scale_min is None:
            return _check_integer_features(np.asarray(X, dtype=np.float64), self.input_bits, "samples")
        X = np.asarray(X, dtype=np.float64)
        if self.impute_values is not None:
            X = np.where(np.isnan(X), self.impute_values, X)
        return quantize_unsigned(min_max_scale(X, self.scale_min, self.scale_max), self.input_bits)

    def preprocessing(self) -> dict:
        """JSON-serialisable description of how raw features become circuit inputs."""
        return {
            "dataset": self.name,
            "input_bits": self.input_bits,
            "feature_names": self.feature_names,
            "classes": self.classes,
            "scale_min": None if self.scale_min is None else self.scale_min.tolist(),
            "scale_max": None if self.scale_max is None else self.scale_max.tolist(),
            "impute_values": None if self.impute_values is None else self.impute_values.tolist(),
        }


# ----- loading ---------------------------------------------------------------


def load_embedded(name: str) -> Dataset:
    """One of scikit-learn's bundled datasets (:data:`EMBEDDED`)."""
    if name not in EMBEDDED:
        raise HwmlpError(f"unknown dataset {name!r}: embedded datasets are {', '.join(EMBEDDED)}")
    from sklearn import datasets

    bunch = getattr(datasets, f"load_{name}")()
    names = [str(n) for n in getattr(bunch, "feature_names", [])] or [
        f"x{i}" for i in range(bunch.data.shape[1])
    ]
    y, classes = _remap_labels(bunch.target)
    target_names = getattr(bunch, "target_names", None)
    if target_names is not None and len(target_names) == len(classes):
        classes = [str(target_names[int(c)]) for c in classes]
    return Dataset(name, np.asarray(bunch.data, dtype=np.float64), y, names, classes)


def load_csv(
    path: str | Path,
    label: str = "Y",
    separator: str | None = None,
    drop: list[str] | tuple[str, ...] = (),
    missing: str = "error",
    name: str | None = None,
) -> Dataset:
    """A CSV file with a header row and a label column.

    ``separator``: None sniffs ``;``, ``,`` or tab from the header. ``drop``: columns
    to ignore (e.g. a sample id). ``missing``: what to do with empty or ``?`` fields:
    ``error`` (refuse), ``drop`` (drop those rows), ``impute`` (later, in
    :func:`prepare`, with the training split's per-feature median).
    """
    path = Path(path)
    if missing not in MISSING_POLICIES:
        raise HwmlpError(f"unknown missing-value policy {missing!r}: use {', '.join(MISSING_POLICIES)}")
    header, rows = _read_rows(path, separator)
    if label not in header:
        raise HwmlpError(f"label column {label!r} not in {path.name} (columns: {', '.join(header[:12])}{' ...' if len(header) > 12 else ''})")
    absent = [c for c in drop if c not in header]
    if absent:
        raise HwmlpError(f"column(s) to drop {absent} not in {path.name}")
    features = [c for c in header if c != label and c not in drop]
    if not features:
        raise HwmlpError(f"{path.name} has no feature columns left")
    col = {c: k for k, c in enumerate(header)}
    labels = [r[col[label]].strip() for r in rows]
    if any(v in ("", "?") for v in labels):
        raise HwmlpError(f"{path.name}: some rows have no label in column {label!r}")
    X = np.empty((len(rows), len(features)))
    for i, r in enumerate(rows):
        for j, c in enumerate(features):
            X[i, j] = _number(r[col[c]], path, i + 2, c)
    has_nan = np.isnan(X).any(axis=1)
    if has_nan.any():
        if missing == "error":
            raise HwmlpError(
                f"{path.name}: {int(has_nan.sum())} rows have missing values: set missing: drop or impute"
            )
        if missing == "drop":
            X, labels = X[~has_nan], [v for v, bad in zip(labels, has_nan) if not bad]
    y, classes = _remap_labels(np.array([_label_value(v) for v in labels], dtype=object))
    return Dataset(name or path.stem, X, y, features, classes, missing)


def load_integer_split(
    train: str | Path,
    test: str | Path,
    input_bits: int,
    label: str = "Y",
    separator: str | None = None,
    drop: list[str] | tuple[str, ...] = (),
    name: str | None = None,
) -> QuantizedSplit:
    """Pre-quantized unsigned integer features from separate train and test CSV files.

    Values must already lie in ``0..2**input_bits - 1``; nothing is rescaled. The
    test file's labels must all occur in the training file.
    """
    check_input_bits(input_bits)
    tr = load_csv(train, label, separator, drop, "error")
    te = load_csv(test, label, separator, drop, "error")
    if te.feature_names != tr.feature_names:
        raise HwmlpError(f"train and test files have different feature columns ({Path(train).name}, {Path(test).name})")
    unseen = set(te.classes) - set(tr.classes)
    if unseen:
        raise HwmlpError(f"test labels {sorted(map(str, unseen))} do not occur in the training file")
    index = {c: k for k, c in enumerate(tr.classes)}
    y_test = np.array([index[te.classes[k]] for k in te.y], dtype=np.int64)
    _require_classes(tr.y, tr.classes, Path(train).name)
    return QuantizedSplit(
        name or Path(train).stem,
        input_bits,
        _check_integer_features(tr.X, input_bits, Path(train).name),
        tr.y,
        _check_integer_features(te.X, input_bits, Path(test).name),
        y_test,
        tr.feature_names,
        tr.classes,
    )


# ----- preparation -----------------------------------------------------------


def check_input_bits(bits) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 1 <= bits <= 16:
        raise HwmlpError(f"impossible input width {bits!r}: input_bits must be an integer in 1..16")
    return bits


def prepare(ds: Dataset, input_bits: int, test_size: float = 0.3, seed: int = 0) -> QuantizedSplit:
    """Stratified seeded split, min-max scaling fitted on the training split, quantization."""
    check_input_bits(input_bits)
    if not (isinstance(test_size, (int, float)) and 0 < test_size < 1):
        raise HwmlpError(f"test_size must be a fraction between 0 and 1, got {test_size!r}")
    _require_classes(ds.y, ds.classes, ds.name)
    counts = np.bincount(ds.y, minlength=ds.n_classes)
    if counts.min() < 2:
        rare = [str(ds.classes[k]) for k in np.flatnonzero(counts < 2)]
        raise HwmlpError(f"{ds.name}: class(es) {rare} have fewer than 2 samples: a stratified split is impossible")
    from sklearn.model_selection import train_test_split

    n_test = max(int(round(test_size * len(ds.y))), ds.n_classes)
    if len(ds.y) - n_test < ds.n_classes:
        raise HwmlpError(f"{ds.name}: too few samples ({len(ds.y)}) for a split with test_size={test_size}")
    idx_train, idx_test = train_test_split(
        np.arange(len(ds.y)), test_size=n_test, stratify=ds.y, random_state=seed
    )
    X_train, X_test = ds.X[idx_train], ds.X[idx_test]
    impute = None
    if np.isnan(ds.X).any():  # only reachable with missing="impute"
        impute = np.nanmedian(X_train, axis=0)
        impute = np.where(np.isnan(impute), 0.0, impute)
        X_train = np.where(np.isnan(X_train), impute, X_train)
        X_test = np.where(np.isnan(X_test), impute, X_test)
    lo, hi = X_train.min(axis=0), X_train.max(axis=0)
    q = lambda X: quantize_unsigned(min_max_scale(X, lo, hi), input_bits)  # noqa: E731
    return QuantizedSplit(
        ds.name, input_bits, q(X_train), ds.y[idx_train], q(X_test), ds.y[idx_test],
        ds.feature_names, ds.classes, lo, hi, impute,
    )


def min_max_scale(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Scale each feature to [0, 1] with bounds fitted elsewhere; constant features map to 0."""
    span = np.where(hi > lo, hi - lo, 1.0)
    return (X - lo) / span


def quantize_unsigned(X01: np.ndarray, bits: int) -> np.ndarray:
    """Map [0, 1] to the integers 0..2**bits - 1 (round to nearest), clipping values outside."""
    top = (1 << bits) - 1
    return np.clip(np.rint(X01 * top), 0, top).astype(np.int64)


# ----- helpers ---------------------------------------------------------------


def _read_rows(path: Path, separator: str | None) -> tuple[list[str], list[list[str]]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise HwmlpError(f"data file {path} not found") from None
    except (IsADirectoryError, UnicodeDecodeError) as e:
        raise HwmlpError(f"data file {path} is not a readable text file ({type(e).__name__})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise HwmlpError(f"data file {path} is empty")
    if separator is None:
        separator = max((";", ",", "\t"), key=lines[0].count)
    rows = [r for r in csv.reader(lines, delimiter=separator) if r and any(f.strip() for f in r)]
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    if not body:
        raise HwmlpError(f"data file {path} has a header but no rows")
    for k, r in enumerate(body):
        if len(r) != len(header):
            raise HwmlpError(
                f"{path.name} line {k + 2}: {len(r)} fields, header has {len(header)} (separator {separator!r}?)"
            )
    return header, body


def _number(field: str, path: Path, line: int, column: str) -> float:
    f = field.strip()
    if f in ("", "?", "NA", "nan", "NaN"):
        return np.nan
    try:
        return float(f)
    except ValueError:
        raise HwmlpError(f"{path.name} line {line}, column {column!r}: {f!r} is not a number") from None


def _label_value(v: str):
    try:
        x = float(v)
        return int(x) if x.is_integer() else x
    except ValueError:
        return v


def _remap_labels(labels: np.ndarray) -> tuple[np.ndarray, list]:
    """Labels -> indices 0..K-1 in sorted label order; returns (y, classes)."""
    classes = sorted(set(labels.tolist()), key=lambda v: (isinstance(v, str), v))
    index = {c: k for k, c in enumerate(classes)}
    return np.array([index[v] for v in labels.tolist()], dtype=np.int64), classes


def _require_classes(y: np.ndarray, classes: list, what: str) -> None:
    if len(classes) < 2:
        raise HwmlpError(f"{what} has a single class ({classes[0]!r}): a classifier needs at least 2")


def _check_integer_features(X: np.ndarray, bits: int, what: str) -> np.ndarray:
    top = (1 << bits) - 1
    if not np.array_equal(X, np.rint(X)) or X.min() < 0 or X.max() > top:
        raise HwmlpError(f"{what}: pre-quantized features must be integers in 0..{top} for input_bits={bits}")
    return X.astype(np.int64)
