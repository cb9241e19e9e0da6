"""Range analysis of an :class:`~hwmlp.intmlp.IntMLP`: the bounds every signal of its
circuit can reach, and what can be removed because of them.

:func:`analyze` walks the model layer by layer from the input ranges
(``0..input_max`` per feature) and gives, per neuron, a :class:`NeuronRange`:

* the **live terms** ``weight * (h[source] & mask)`` with the exact interval of each
  product; a term is dropped when its weight is zero, when its mask selects no bit
  the input can set, or when its input is a constant (its product is then folded
  into the neuron's ``offset`` together with the bias);
* the interval of the **sum** and of the **output** (after the activation), and so
  the minimal width of each (:attr:`Interval.width`: unsigned when never negative,
  two's complement otherwise);
* whether the output is **constant** (a ReLU/QReLU whose sum can never be positive,
  a QReLU that always saturates, a sum with no live term) and whether a hidden
  neuron is **unused** (no live, non-constant neuron of the next layer reads it).
  Hidden neurons that are constant or unused are *removed*: the circuit has no logic
  for them. Output neurons always stay (the argmax needs them), constant ones as
  constants.

Exactness: every product interval is exact for its input interval (one variable).
Sum intervals are exact in the first layer (features vary independently) and, when
the model has at most :data:`EXHAUSTIVE_INPUT_BITS` input bits, in every layer (every
input vector is evaluated); otherwise later layers get a sound enclosure from
interval arithmetic. All figures are Python integers on the model's own scale.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from .intmlp import Activation, IntMLP, bits_for_range

#: Models with at most this many input bits in total get exact ranges in every layer.
EXHAUSTIVE_INPUT_BITS = 20

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Interval:
    """The integers ``lo..hi`` (inclusive) a signal can take."""

    lo: int
    hi: int

    def __post_init__(self):
        if self.lo > self.hi:
            raise ValueError(f"empty interval [{self.lo}, {self.hi}]")

    @property
    def width(self) -> int:
        """Bits of the signal: unsigned when ``lo >= 0``, two's complement otherwise."""
        return bits_for_range(self.lo, self.hi)

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def constant(self) -> bool:
        return self.lo == self.hi

    def __str__(self) -> str:
        return f"[{self.lo}, {self.hi}]"


@dataclass(frozen=True)
class Term:
    """A live connection: ``weight * (h[source] & mask)``.

    ``mask`` is None when the whole input value enters the product (no mask, or a
    mask covering every bit a non-negative input can set); otherwise it keeps only
    bits the input can set (never 0). ``product`` is the exact interval of the term.
    """

    source: int
    weight: int
    mask: int | None
    product: Interval


@dataclass(frozen=True)
class NeuronRange:
    """Bounds and liveness of one neuron (``layer``, ``index`` as in the model).

    ``offset``: the bias plus the products of constant inputs; the sum is
    ``offset + sum of terms``. ``constant``: the output value when it never varies,
    else None. ``unused``: a hidden neuron that no live neuron reads.
    ``reason``: why the neuron is constant or unused (None when neither).
    """

    layer: int
    index: int
    terms: tuple[Term, ...]
    offset: int
    sum: Interval
    out: Interval
    activation: Activation
    constant: int | None
    unused: bool
    reason: str | None

    @property
    def needs_logic(self) -> bool:
        """True when the circuit computes this neuron (it is neither constant nor unused)."""
        return self.constant is None and not self.unused


@dataclass
class RangeAnalysis:
    """Result of :func:`analyze`: ``layers[l][j]`` describes neuron ``j`` of layer ``l``.

    ``exact``: True when every sum interval is exact (see the module docstring).
    """

    mlp: IntMLP
    layers: list[list[NeuronRange]]
    exact: bool

    def inputs_of(self, layer: int) -> list[Interval]:
        """Intervals of the values layer ``layer`` reads (features, or previous outputs)."""
        if layer == 0:
            return [Interval(0, self.mlp.input_max)] * self.mlp.n_inputs
        return [n.out for n in self.layers[layer - 1]]

    def report(self) -> dict:
        """JSON-ready summary per layer: the neurons computed, the others (constant or
        unused, with the reason; hidden ones are removed, output ones stay as constants),
        the connections computed, and the sum widths and ranges."""
        layers = []
        for neurons, layer in zip(self.layers, self.mlp.layers):
            layers.append(
                {
                    "neurons": len(neurons),
                    "computed": [n.index for n in neurons if n.needs_logic],
                    "not_computed": [
                        {"neuron": n.index, "constant": n.constant, "unused": n.unused, "reason": n.reason}
                        for n in neurons
                        if not n.needs_logic
                    ],
                    "connections": int(layer.weights.size),
                    "connections_computed": sum(len(n.terms) for n in neurons if n.needs_logic),
                    "sum_widths": [n.sum.width for n in neurons],
                    "out_widths": [n.out.width for n in neurons],
                    "sum_ranges": [[n.sum.lo, n.sum.hi] for n in neurons],
                }
            )
        return {"exact": self.exact, "layers": layers}

    def summary(self) -> str:
        """The report as a few lines of text."""
        lines = [f"range analysis of {self.mlp.name} ({'exact' if self.exact else 'sound bounds'})"]
        for k, layer in enumerate(self.report()["layers"]):
            lines.append(
                f"layer {k}: {len(layer['computed'])}/{layer['neurons']} neurons computed, "
                f"{layer['connections_computed']}/{layer['connections']} connections; "
                f"sum widths {layer['sum_widths']}"
            )
            for r in layer["not_computed"]:
                what = "unused" if r["unused"] else f"constant {r['constant']}"
                lines.append(f"  neuron {r['neuron']} {what}: {r['reason']}")
        return "\n".join(lines)


def analyze(mlp: IntMLP, exhaustive_input_bits: int = EXHAUSTIVE_INPUT_BITS) -> RangeAnalysis:
    """Range analysis of ``mlp`` (see the module docstring).

    ``exhaustive_input_bits``: evaluate every input vector (exact sums in every layer)
    when the model has at most this many input bits in total; 0 never does.
    """
    exact_sums = None
    if mlp.n_inputs * mlp.input_bits <= exhaustive_input_bits:
        exact_sums = _exhaustive_sum_bounds(mlp)
    inputs = [Interval(0, mlp.input_max)] * mlp.n_inputs
    constants: list[int | None] = [None] * mlp.n_inputs
    layers = []
    for k, layer in enumerate(mlp.layers):
        neurons = []
        for j in range(layer.n_outputs):
            terms, offset = _terms(layer, j, inputs, constants)
            lo = offset + sum(t.product.lo for t in terms)
            hi = offset + sum(t.product.hi for t in terms)
            if exact_sums is not None:
                lo, hi = exact_sums[k][0][j], exact_sums[k][1][j]
            neurons.append(_neuron(k, j, terms, offset, Interval(lo, hi), layer.activation))
        layers.append(neurons)
        inputs = [n.out for n in neurons]
        constants = [n.constant for n in neurons]
    _mark_unused(layers)
    return RangeAnalysis(mlp, layers, exact=exact_sums is not None or len(mlp.layers) == 1)


def _terms(layer, j: int, inputs: list[Interval], constants: list[int | None]) -> tuple[tuple[Term, ...], int]:
    """Live terms of neuron ``j`` and its offset (bias + products of constant inputs)."""
    offset = int(layer.biases[j])
    terms = []
    for i, w in enumerate(layer.weights[j].tolist()):
        mask = None if layer.masks is None else int(layer.masks[j, i])
        if constants[i] is not None:
            offset += w * (constants[i] if mask is None else constants[i] & mask)
            continue
        x = inputs[i]
        if mask is not None and x.lo >= 0:
            mask &= (1 << x.hi.bit_length()) - 1
            if mask == (1 << x.hi.bit_length()) - 1:
                mask = None
        if w == 0 or mask == 0:
            continue
        lo, hi = (x.lo, x.hi) if mask is None else and_bounds(x.lo, x.hi, mask)
        terms.append(Term(i, w, mask, Interval(min(w * lo, w * hi), max(w * lo, w * hi))))
    return tuple(terms), offset


def _neuron(k: int, j: int, terms, offset: int, s: Interval, act: Activation) -> NeuronRange:
    out = Interval(act.apply_int(s.lo), act.apply_int(s.hi))
    reason = None
    if out.constant:
        if s.constant:
            reason = f"sum is always {s.lo}"
        elif out.lo == 0 and act.lsb:
            reason = f"sum {s} never reaches 2**{act.lsb}, the QReLU's lowest bit"
        elif out.lo == 0:
            reason = f"sum {s} is never positive"
        elif act.width is not None and out.lo == (1 << act.width) - 1:
            reason = f"sum {s} always saturates the QReLU"
        else:
            reason = f"sum {s} always gives {out.lo}"
    return NeuronRange(k, j, terms, offset, s, out, act, out.lo if out.constant else None, False, reason)


def _mark_unused(layers: list[list[NeuronRange]]) -> None:
    """Mark hidden neurons that no computed neuron of the next layer reads (backwards)."""
    for k in range(len(layers) - 2, -1, -1):
        read = {t.source for n in layers[k + 1] if n.needs_logic for t in n.terms}
        for j, n in enumerate(layers[k]):
            if n.constant is None and j not in read:
                layers[k][j] = replace(n, unused=True, reason="no computed neuron of the next layer reads it")


def _exhaustive_sum_bounds(mlp: IntMLP) -> list[tuple[list[int], list[int]]]:
    """Exact (min, max) of every neuron sum over all possible inputs, per layer."""
    n_bits = mlp.n_inputs * mlp.input_bits
    lo = [np.full(layer.n_outputs, np.iinfo(np.int64).max) for layer in mlp.layers]
    hi = [np.full(layer.n_outputs, np.iinfo(np.int64).min) for layer in mlp.layers]
    for start in range(0, 1 << n_bits, _CHUNK):
        h = input_vectors(mlp, start, min(start + _CHUNK, 1 << n_bits))
        for k, layer in enumerate(mlp.layers):
            s = layer.sums(h)
            lo[k] = np.minimum(lo[k], s.min(axis=0))
            hi[k] = np.maximum(hi[k], s.max(axis=0))
            h = layer.activation.apply(s)
    return [([int(v) for v in a], [int(v) for v in b]) for a, b in zip(lo, hi)]


def input_vectors(mlp: IntMLP, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Input vectors ``start..stop-1`` of ``mlp`` (all of them when ``stop`` is None),
    row ``k`` being the vector whose packed ``x`` port value is ``start + k``."""
    stop = 1 << (mlp.n_inputs * mlp.input_bits) if stop is None else stop
    codes = np.arange(start, stop, dtype=np.int64)
    return (codes[:, None] >> (np.arange(mlp.n_inputs) * mlp.input_bits)) & mlp.input_max


def and_bounds(lo: int, hi: int, mask: int) -> tuple[int, int]:
    """Exact (min, max) of ``x & mask`` over the integers ``lo <= x <= hi`` (two's
    complement, ``mask >= 0``)."""
    if lo < 0:
        # x & mask only reads bits below mask's length: shift negatives into that window
        k = max(mask.bit_length(), (-lo).bit_length()) + 1
        parts = [(lo + (1 << k), min(hi, -1) + (1 << k))] + ([(0, hi)] if hi >= 0 else [])
        bounds = [_and_bounds_unsigned(a, b, mask) for a, b in parts]
        return min(b[0] for b in bounds), max(b[1] for b in bounds)
    return _and_bounds_unsigned(lo, hi, mask)


@lru_cache(maxsize=4096)
def _and_bounds_unsigned(lo: int, hi: int, mask: int) -> tuple[int, int]:
    """Exact (min, max) of ``x & mask`` over ``0 <= lo <= x <= hi``: a digit walk from
    the top bit that tracks whether ``x`` still equals ``lo`` / ``hi`` on the bits so far."""
    n = max(hi.bit_length(), 1)
    # best[(at_lo, at_hi)] = (min, max) of the masked value of the bits decided so far
    best = {(True, True): (0, 0)}
    for b in range(n - 1, -1, -1):
        nxt: dict[tuple[bool, bool], tuple[int, int]] = {}
        lb, hb = lo >> b & 1, hi >> b & 1
        for (at_lo, at_hi), (vmin, vmax) in best.items():
            for bit in (0, 1):
                if (at_lo and bit < lb) or (at_hi and bit > hb):
                    continue
                key = (at_lo and bit == lb, at_hi and bit == hb)
                add = (bit & (mask >> b & 1)) << b
                old = nxt.get(key)
                cand = (vmin + add, vmax + add)
                nxt[key] = cand if old is None else (min(old[0], cand[0]), max(old[1], cand[1]))
        best = nxt
    return min(v[0] for v in best.values()), max(v[1] for v in best.values())
