"""The bit-exact integer MLP: hwmlp's golden model.

An :class:`IntMLP` maps unsigned ``input_bits``-bit feature vectors to a class
index with exact integer arithmetic only:

* layer ``l`` computes, per neuron ``j``, the sum
  ``s_j = b_j + sum_i w_ji * (h_i & m_ji)`` where ``h`` is the previous layer's
  output (the input features for the first layer), ``w`` a signed integer weight,
  ``b`` a signed integer bias already on the scale of the products, and ``m`` the
  connection's partial-product mask (all ones when the layer has no masks);
* the layer's :class:`Activation` turns sums into outputs (identity, ReLU, or
  QReLU: a saturating bit slice);
* the prediction is the index of the first maximum of ``out >> argmax_drop_bits``
  (ties go to the lowest index).

The search, the RTL generator, the testbenches and the reports all read this
object; everything here is vectorized over a batch of samples.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import HwmlpError
from .io import read_json, write_text_atomic

FORMAT = "hwmlp.intmlp"
VERSION = 1

#: Largest magnitude any intermediate value may reach (int64 arithmetic stays exact).
_SAFE_MAGNITUDE = 2**62


@dataclass(frozen=True)
class Activation:
    """A neuron activation on integer sums.

    ``kind`` is ``"none"`` (identity), ``"relu"`` (``max(s, 0)``) or ``"qrelu"``:
    keep bits ``[msb:lsb]`` of the sum, i.e. ``clip(s >> lsb, 0, 2**(msb-lsb+1) - 1)``
    (zero below, saturate above).
    """

    kind: str = "relu"
    msb: int | None = None
    lsb: int = 0

    def __post_init__(self):
        if self.kind not in ("none", "relu", "qrelu"):
            raise HwmlpError(f"unknown activation {self.kind!r}: use none, relu or qrelu")
        if self.kind == "qrelu":
            if self.msb is None or not (0 <= self.lsb <= self.msb <= 60):
                raise HwmlpError(
                    f"impossible QReLU slice [msb={self.msb}:lsb={self.lsb}]: need 0 <= lsb <= msb <= 60"
                )
        elif self.msb is not None or self.lsb != 0:
            raise HwmlpError(f"activation {self.kind!r} takes no bit slice")

    @classmethod
    def identity(cls) -> "Activation":
        return cls("none")

    @classmethod
    def relu(cls) -> "Activation":
        return cls("relu")

    @classmethod
    def qrelu(cls, msb: int, lsb: int = 0) -> "Activation":
        return cls("qrelu", msb, lsb)

    @property
    def width(self) -> int | None:
        """Output width in bits of a QReLU, None otherwise (it depends on the sum)."""
        return self.msb - self.lsb + 1 if self.kind == "qrelu" else None

    def apply(self, s: np.ndarray) -> np.ndarray:
        """Apply to an integer array of sums (any shape)."""
        if self.kind == "none":
            return s
        if self.kind == "relu":
            return np.maximum(s, 0)
        return np.clip(s >> self.lsb, 0, (1 << self.width) - 1)

    def apply_int(self, s: int) -> int:
        """Apply to one Python integer (used by range analysis)."""
        if self.kind == "none":
            return s
        if self.kind == "relu":
            return max(s, 0)
        return min(max(s >> self.lsb, 0), (1 << self.width) - 1)

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        if self.kind == "qrelu":
            d.update(msb=self.msb, lsb=self.lsb)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Activation":
        _check_keys(d, {"kind", "msb", "lsb"}, "activation")
        return cls(d.get("kind", "relu"), d.get("msb"), d.get("lsb", 0))


@dataclass
class IntLayer:
    """One fully connected layer: ``weights`` (out, in), ``biases`` (out,), optional
    partial-product ``masks`` (out, in) of non-negative bit masks, and its activation."""

    weights: np.ndarray
    biases: np.ndarray
    activation: Activation = field(default_factory=Activation.relu)
    masks: np.ndarray | None = None

    def __post_init__(self):
        self.weights = _int_array(self.weights, 2, "weights")
        self.biases = _int_array(self.biases, 1, "biases")
        if self.masks is not None:
            self.masks = _int_array(self.masks, 2, "masks")
            if self.masks.shape != self.weights.shape:
                raise HwmlpError(
                    f"masks shape {self.masks.shape} differs from weights shape {self.weights.shape}"
                )
            if (self.masks < 0).any():
                raise HwmlpError("partial-product masks must be non-negative bit masks")
        if self.biases.shape != (self.weights.shape[0],):
            raise HwmlpError(
                f"biases shape {self.biases.shape} does not match {self.weights.shape[0]} neurons"
            )

    @property
    def n_inputs(self) -> int:
        return self.weights.shape[1]

    @property
    def n_outputs(self) -> int:
        return self.weights.shape[0]

    def sums(self, h: np.ndarray) -> np.ndarray:
        """Exact neuron sums for a batch ``h`` (N, in) -> (N, out), int64."""
        if self.masks is None:
            return h @ self.weights.T + self.biases
        masked = h[:, None, :] & self.masks[None, :, :]
        return (masked * self.weights[None, :, :]).sum(axis=2) + self.biases

    def forward(self, h: np.ndarray) -> np.ndarray:
        return self.activation.apply(self.sums(h))

    def to_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "biases": self.biases.tolist(),
            "activation": self.activation.to_dict(),
            "masks": None if self.masks is None else self.masks.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "IntLayer":
        _check_keys(d, {"weights", "biases", "activation", "masks"}, "layer")
        for key in ("weights", "biases"):
            if key not in d:
                raise HwmlpError(f"layer is missing {key!r}")
        return cls(
            d["weights"],
            d["biases"],
            Activation.from_dict(d.get("activation", {"kind": "relu"})),
            d.get("masks"),
        )


@dataclass
class IntMLP:
    """A bit-exact integer MLP classifier (see the module docstring for semantics).

    ``input_bits``: width of each unsigned input feature (1..16 bits).
    ``argmax_drop_bits``: low bits of the output values ignored by the argmax.
    ``classes``: the original class labels, index ``k`` is predicted class ``k``.
    """

    input_bits: int
    layers: list[IntLayer]
    argmax_drop_bits: int = 0
    name: str = "mlp"
    classes: list | None = None

    def __post_init__(self):
        if not isinstance(self.input_bits, (int, np.integer)) or not 1 <= self.input_bits <= 16:
            raise HwmlpError(f"impossible input width {self.input_bits!r}: use 1..16 bits")
        self.input_bits = int(self.input_bits)
        if not self.layers:
            raise HwmlpError("an MLP needs at least one layer")
        for k in range(1, len(self.layers)):
            if self.layers[k].n_inputs != self.layers[k - 1].n_outputs:
                raise HwmlpError(
                    f"layer {k} takes {self.layers[k].n_inputs} inputs but layer {k - 1} "
                    f"has {self.layers[k - 1].n_outputs} neurons"
                )
        if not 0 <= self.argmax_drop_bits <= 60:
            raise HwmlpError(f"impossible argmax_drop_bits {self.argmax_drop_bits}: use 0..60")
        if self.classes is not None and len(self.classes) != self.n_outputs:
            raise HwmlpError(
                f"{len(self.classes)} class labels for {self.n_outputs} output neurons"
            )
        bound = max(abs(v) for r in self.value_ranges() for v in (*r.sum_lo, *r.sum_hi))
        if bound >= _SAFE_MAGNITUDE:
            raise HwmlpError("weights too large: neuron sums could exceed 62 bits")

    # ----- shape -------------------------------------------------------------
    @property
    def n_inputs(self) -> int:
        return self.layers[0].n_inputs

    @property
    def n_outputs(self) -> int:
        return self.layers[-1].n_outputs

    @property
    def topology(self) -> list[int]:
        return [self.n_inputs] + [layer.n_outputs for layer in self.layers]

    @property
    def input_max(self) -> int:
        return (1 << self.input_bits) - 1

    # ----- evaluation --------------------------------------------------------
    def check_inputs(self, X) -> np.ndarray:
        """Return ``X`` as an int64 (N, n_inputs) array, or raise HwmlpError."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise HwmlpError(f"inputs must have shape (N, {self.n_inputs}), got {X.shape}")
        if X.size and not np.issubdtype(X.dtype, np.integer):
            if not np.array_equal(X, np.round(X)):
                raise HwmlpError("inputs must be integers (quantize them first)")
        X = X.astype(np.int64)
        if X.size and (X.min() < 0 or X.max() > self.input_max):
            raise HwmlpError(
                f"inputs must lie in 0..{self.input_max} for {self.input_bits}-bit features"
            )
        return X

    def activations(self, X) -> list[np.ndarray]:
        """Outputs of every layer for a batch, as int64 arrays [(N, n_l) ...]."""
        h = self.check_inputs(X)
        outs = []
        for layer in self.layers:
            h = layer.forward(h)
            outs.append(h)
        return outs

    def forward(self, X) -> np.ndarray:
        """Output-layer values (after its activation), (N, n_outputs) int64."""
        return self.activations(X)[-1]

    def predict(self, X) -> np.ndarray:
        """Class index per sample: first maximum of ``forward(X) >> argmax_drop_bits``."""
        return np.argmax(self.forward(X) >> self.argmax_drop_bits, axis=1)

    def accuracy(self, X, y) -> float:
        y = np.asarray(y)
        if len(y) == 0:
            raise HwmlpError("accuracy of an empty set is undefined")
        return float(np.mean(self.predict(X) == y))

    # ----- range analysis ----------------------------------------------------
    def value_ranges(self) -> list["LayerRanges"]:
        """Interval bounds of every neuron's sum and output, layer by layer.

        Exact for the first layer (inputs vary independently over 0..input_max);
        a sound over-approximation for later layers.
        """
        lo = [0] * self.n_inputs
        hi = [self.input_max] * self.n_inputs
        result = []
        for layer in self.layers:
            r = _layer_ranges(layer, lo, hi)
            result.append(r)
            lo, hi = r.out_lo, r.out_hi
        return result

    # ----- persistence -------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "name": self.name,
            "input_bits": self.input_bits,
            "argmax_drop_bits": self.argmax_drop_bits,
            "classes": self.classes,
            "layers": [layer.to_dict() for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, d: dict) -> "IntMLP":
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise HwmlpError(f"not an hwmlp integer model (expected format {FORMAT!r})")
        if d.get("version") != VERSION:
            raise HwmlpError(
                f"integer model version {d.get('version')!r} is not supported (this hwmlp reads {VERSION})"
            )
        _check_keys(
            d,
            {"format", "version", "name", "input_bits", "argmax_drop_bits", "classes", "layers"},
            "integer model",
        )
        return cls(
            input_bits=d.get("input_bits"),
            layers=[IntLayer.from_dict(layer) for layer in d.get("layers") or []],
            argmax_drop_bits=d.get("argmax_drop_bits", 0),
            name=d.get("name", "mlp"),
            classes=d.get("classes"),
        )

    def save(self, path: str | Path) -> None:
        """Write the model as versioned JSON (atomically)."""
        write_text_atomic(Path(path), json.dumps(self.to_dict(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "IntMLP":
        return cls.from_dict(read_json(path, "model file", missing_hint=None))

    def equals(self, other: "IntMLP") -> bool:
        return self.to_dict() == other.to_dict()


@dataclass(frozen=True)
class LayerRanges:
    """Per-neuron bounds (Python ints) of a layer's sums and outputs."""

    sum_lo: list[int]
    sum_hi: list[int]
    out_lo: list[int]
    out_hi: list[int]

    @property
    def out_bits(self) -> int:
        """Unsigned width of the widest non-negative output, or signed width if any may be negative."""
        return max(bits_for_range(lo, hi) for lo, hi in zip(self.out_lo, self.out_hi))


def bits_for_range(lo: int, hi: int) -> int:
    """Bits needed for every integer in [lo, hi]: unsigned if lo >= 0, else two's complement."""
    if lo >= 0:
        return max(1, hi.bit_length())
    return 1 + max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0)


def _layer_ranges(layer: IntLayer, lo: Sequence[int], hi: Sequence[int]) -> LayerRanges:
    s_lo, s_hi = [], []
    W = layer.weights.tolist()
    B = layer.biases.tolist()
    M = layer.masks.tolist() if layer.masks is not None else None
    for j, (row, b) in enumerate(zip(W, B)):
        a, z = b, b
        for i, w in enumerate(row):
            x_lo, x_hi = lo[i], hi[i]
            if M is not None:
                x_lo, x_hi = _masked_range(x_lo, x_hi, M[j][i])
            p = (w * x_lo, w * x_hi)
            a += min(p)
            z += max(p)
        s_lo.append(a)
        s_hi.append(z)
    act = layer.activation
    return LayerRanges(
        s_lo, s_hi, [act.apply_int(v) for v in s_lo], [act.apply_int(v) for v in s_hi]
    )


def _masked_range(lo: int, hi: int, mask: int) -> tuple[int, int]:
    """Sound bounds of ``x & mask`` (two's complement, mask >= 0) for x in [lo, hi]:
    exact when lo == hi, [0, max over 0 <= x <= hi of x & mask] when lo >= 0, and
    [0, mask] when x may be negative (its sign-extension bits may be selected)."""
    if lo == hi:
        return lo & mask, lo & mask
    if lo < 0:
        return 0, mask
    return 0, _max_and(hi, mask)


def _max_and(hi: int, mask: int) -> int:
    """Largest ``x & mask`` over 0 <= x <= hi."""
    best = hi & mask
    for b in range(hi.bit_length()):
        if hi >> b & 1:
            # clear bit b of hi, set all lower bits: still <= hi
            x = (hi & ~((1 << (b + 1)) - 1)) | ((1 << b) - 1)
            best = max(best, x & mask)
    return best


def _int_array(a, ndim: int, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception:
        raise HwmlpError(f"{what} must be a {ndim}-D array of integers") from None
    if arr.ndim != ndim or arr.size == 0:
        raise HwmlpError(f"{what} must be a non-empty {ndim}-D array of integers, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.number) and np.array_equal(arr, np.round(arr))):
            raise HwmlpError(f"{what} must hold integers")
        if np.abs(arr).max() >= 2**62:
            raise HwmlpError(f"{what} too large: magnitudes must stay below 2**62")
    return arr.astype(np.int64)


def _check_keys(d: dict, allowed: set, what: str) -> None:
    if not isinstance(d, dict):
        raise HwmlpError(f"{what} must be a mapping")
    unknown = set(d) - allowed
    if unknown:
        raise HwmlpError(f"unknown key(s) {sorted(unknown)} in {what}; allowed: {sorted(allowed)}")
