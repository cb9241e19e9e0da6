"""Post-training quantization: :class:`FloatMLP` -> :class:`IntMLP`.

The float model reads ``x_int / (2**input_bits - 1)``. Layer ``l`` gets a positive
scale ``a_l`` mapping its largest weight magnitude onto the weight grid; since ReLU
commutes with positive scaling, its integer sums are ``c_l = a_l * c_{l-1}`` times the
float sums (``c_0 = 2**input_bits - 1``), so biases are quantized on that scale
(``b_int = round(a_l * c_{l-1} * b)``) and the argmax is unchanged up to rounding.
"""

from __future__ import annotations

import numpy as np

from .errors import HwmlpError
from .intmlp import Activation, IntLayer, IntMLP
from .train import FloatMLP

SCHEMES = ("fixed", "pow2")


#: Float weights at most this large count as zero when a layer's scale is chosen.
NEGLIGIBLE_WEIGHT = 1e-6


def check_weight_bits(bits) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool) or not 2 <= bits <= 24:
        raise HwmlpError(f"impossible weight width {bits!r}: weight_bits must be an integer in 2..24")
    return bits


def quantize_mlp(
    fmlp: FloatMLP,
    input_bits: int,
    weight_bits: int = 8,
    scheme: str = "fixed",
    name: str = "mlp",
    classes: list | None = None,
    relu_on_output: bool = False,
) -> IntMLP:
    """Quantize every layer's weights to ``weight_bits``-bit signed values.

    ``scheme="fixed"``: integers in ``[-(2**(b-1)-1), 2**(b-1)-1]``.
    ``scheme="pow2"``: zero or ``±2**e`` with ``0 <= e <= b-2`` (a shift in hardware),
    rounded in the log domain; magnitudes below ``2**-1`` of the grid become zero.
    """
    check_weight_bits(weight_bits)
    if scheme not in SCHEMES:
        raise HwmlpError(f"unknown weight scheme {scheme!r}: use {' or '.join(SCHEMES)}")
    top = (1 << (weight_bits - 1)) - 1 if scheme == "fixed" else 1 << (weight_bits - 2)
    scale_in = float((1 << input_bits) - 1)
    layers = []
    for k, (W, b) in enumerate(zip(fmlp.weights, fmlp.biases)):
        peak = float(np.abs(W).max())
        # A layer whose weights all vanished (it reads only dead ReLUs: weight decay
        # shrinks such weights towards 0) is a constant: keep the scale, weights become 0.
        a = top / peak if peak > NEGLIGIBLE_WEIGHT else 1.0
        Wq = _round_fixed(W * a, top) if scheme == "fixed" else _round_pow2(W * a, weight_bits - 2)
        bq = np.rint(b * a * scale_in).astype(np.int64)
        last = k == len(fmlp.weights) - 1
        act = Activation.relu() if (not last or relu_on_output) else Activation.identity()
        layers.append(IntLayer(Wq, bq, act))
        scale_in *= a
    return IntMLP(input_bits, layers, name=name, classes=classes)


def _round_fixed(V: np.ndarray, top: int) -> np.ndarray:
    return np.clip(np.rint(V), -top, top).astype(np.int64)


def _round_pow2(V: np.ndarray, max_exp: int) -> np.ndarray:
    mag = np.abs(V)
    with np.errstate(divide="ignore"):
        e = np.clip(np.rint(np.log2(np.where(mag > 0, mag, 1.0))), 0, max_exp).astype(np.int64)
    q = np.sign(V).astype(np.int64) << e
    return np.where(mag < 0.5, 0, q)
