"""Fast hardware cost model: bit heaps, adders, activations and argmax mapped to cells.

For every neuron of a bespoke combinational MLP the model builds the **BitHeap**
of its sum ``b + sum_i w_i * (h_i & m_i)``:

* each CSD digit ``±2**e`` of ``w_i`` and each bit ``b`` the **PartialProductMask**
  ``m_i`` keeps (and the input can actually set) puts one bit in column ``e + b``
  (shift-add multiplication: no gates for the shift). A negative digit adds the
  inverted bit and the constant ``-2**(e+b)``, i.e. ``-x = ~x - 1`` bitwise;
* the bias, the constant corrections and the products of constant inputs fold
  into one constant, whose two's-complement bits (over the sum's width) are
  constant bits of the heap.

The heap is compressed column by column, least significant first: ``t`` bits in a
column (carries in included) take ``(t - 1) // 2`` full adders and, when ``t`` is
even, one half adder, and send ``t // 2`` carries to the next column; columns
stop at the sum's width (from interval bounds). This reduces the heap to one row,
so the final carry-propagate adder is included. An adder fed by the column's
constant-1 bit is cheaper (see :data:`COMPONENTS`).

Then the activation logic (ReLU zeroing, QReLU saturation) of the output bits
that are read, and the argmax: a tree of ripple comparators over the output
values with their dropped bits removed, plus the multiplexers of the intermediate
winners and indices; comparisons that the value ranges decide fold away, and those
against constants are cheap (see :func:`_argmax_counts`).

Dead logic costs nothing, as after synthesis: a hidden neuron that no live neuron
of the next layer reads (zero weight, zero mask, or a constant output) is dropped,
an output bit no mask keeps needs no activation logic, and constant inputs become
constants of the reading neuron's heap.

Every component maps to EGFET cells by :data:`COMPONENTS` (an assumed
decomposition); area is the cells' area in um^2, power their leakage (the
published reports put leakage at ~96% of printed-circuit power). A
:class:`Calibration` scales every component, fitted against synthesized area with
:func:`fit_calibration`; :func:`agreement` reports how well a model ranks and
predicts a set of synthesized designs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..errors import HwmlpError
from ..intmlp import IntMLP
from ..tech import EGFET_1V0, Technology
from .approx import csd_masks
from .genome import Genome, GenomeBatch, SearchSpace, full_mask

#: Cells of every cost-model component (assumed decomposition into the EGFET library).
COMPONENTS: Mapping[str, Mapping[str, int]] = {
    # sum = a ^ b ^ c (2 XOR2); carry = NAND(NAND(a, b), NAND(c, a ^ b)) (3 NAND2)
    "full_adder": {"XOR2X1": 2, "NAND2X1": 3},
    # sum = a ^ b; carry = a & b
    "half_adder": {"XOR2X1": 1, "AND2X1": 1},
    # a + b + 1: sum = XNOR(a, b), carry = a | b
    "const_full_adder": {"XNOR2X1": 1, "OR2X1": 1},
    # a + 1: sum = ~a, carry = a
    "const_half_adder": {"INVX1": 1},
    # ReLU / QReLU: an output bit forced to 0 when the sum is negative (AND with the inverted sign)
    "relu_bit": {"AND2X1": 1},
    # QReLU: an output bit forced to 1 when the sum overflows the slice
    "saturate_bit": {"OR2X1": 1},
    # QReLU: one sum bit above the slice entering the overflow OR tree
    "saturate_detect": {"OR2X1": 1},
    # argmax: one carry cell of a ripple comparator, majority(a, ~b, c) =
    # NAND(NAND(a, ~b), NAND(c, NAND(~a, b))) with the two inverters
    "comparator_bit": {"NAND2X1": 4, "INVX1": 2},
    # argmax: a carry cell comparing with a constant bit: a AND c or a OR c
    "const_comparator_bit": {"NAND2X1": 1, "INVX1": 1},
    # argmax: one bit of a 2:1 multiplexer of a winner's value or index, NAND(NAND(s, a), NAND(~s, b))
    # (the select's inverter is shared by all bits)
    "mux_bit": {"NAND2X1": 3},
    # argmax: a multiplexer bit choosing between a signal and a constant: s AND a or s OR a
    "const_mux_bit": {"NAND2X1": 1, "INVX1": 1},
}
FEATURES: tuple[str, ...] = tuple(COMPONENTS)
_F = {name: k for k, name in enumerate(FEATURES)}
_NEURON_FEATURES = FEATURES[:7]


@dataclass
class Calibration:
    """Per-component scale factors applied to the modelled area and leakage
    (1.0: the cell decomposition of :data:`COMPONENTS` as is)."""

    area_scale: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 1.0))
    leakage_scale: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 1.0))

    def __post_init__(self):
        for scales in (self.area_scale, self.leakage_scale):
            unknown = set(scales) - set(FEATURES)
            if unknown:
                raise HwmlpError(f"calibration names unknown component(s) {sorted(unknown)}")
            if any(not np.isfinite(v) or v < 0 for v in scales.values()):
                raise HwmlpError("calibration scale factors must be finite and non-negative")
            for name in FEATURES:
                scales.setdefault(name, 1.0)

    def to_dict(self) -> dict:
        return {"area_scale": dict(self.area_scale), "leakage_scale": dict(self.leakage_scale)}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(dict(d.get("area_scale", {})), dict(d.get("leakage_scale", {})))


@dataclass
class CostReport:
    """Modelled cost of P designs: ``counts`` (P, F) of every component of
    :data:`FEATURES`, ``area_um2`` (P,) and ``leakage_nW`` (P,)."""

    counts: np.ndarray
    area_um2: np.ndarray
    leakage_nW: np.ndarray

    @property
    def area_cm2(self) -> np.ndarray:
        return self.area_um2 / 1e8

    @property
    def power_mW(self) -> np.ndarray:
        """Leakage power (mW), the model's estimate of total power."""
        return self.leakage_nW / 1e6

    def breakdown(self, k: int) -> dict[str, int]:
        """Component counts of design ``k``."""
        return {name: int(c) for name, c in zip(FEATURES, self.counts[k])}


class CostModel:
    """Area (um^2) and leakage (nW) of designs, from component counts, cells of
    ``tech`` and a :class:`Calibration`."""

    def __init__(self, tech: Technology = EGFET_1V0, calibration: Calibration | None = None):
        self.tech = tech
        self.calibration = calibration or Calibration()
        self.unit_area_um2 = np.array([self._cells(n, "area_um2") for n in FEATURES])
        self.unit_leakage_nW = np.array([self._cells(n, "leakage_nW") for n in FEATURES])

    def _cells(self, component: str, figure: str) -> float:
        return sum(k * getattr(self.tech.cell(c), figure) for c, k in COMPONENTS[component].items())

    def report(self, counts: np.ndarray) -> CostReport:
        """Area and leakage of designs with the given component counts (P, F)."""
        cal = self.calibration
        area = counts @ (self.unit_area_um2 * [cal.area_scale[n] for n in FEATURES])
        leak = counts @ (self.unit_leakage_nW * [cal.leakage_scale[n] for n in FEATURES])
        return CostReport(counts, area, leak)

    def of_genomes(self, genomes: Sequence[Genome] | GenomeBatch, space: SearchSpace) -> CostReport:
        """Cost of every genome (identical to :meth:`of_mlp` of its ``to_intmlp``)."""
        batch = GenomeBatch.of(genomes)
        layers = []
        for l in range(space.n_layers):
            hidden = l < space.n_hidden
            lsb = batch.lsb[l] if hidden else np.zeros_like(batch.biases[l])
            width = np.broadcast_to(batch.width[:, l, None], lsb.shape) if hidden else lsb
            kind = "qrelu" if hidden else space.output_activation
            layers.append(_Layer(batch.weights[l], batch.masks[l], batch.biases[l], kind, lsb, width))
        return self.report(_component_counts(layers, space.input_bits, batch.argmax_drop))

    def of_mlp(self, mlp: IntMLP) -> CostReport:
        """Cost of one integer model (a report of one design)."""
        layers = []
        for k, layer in enumerate(mlp.layers):
            act = layer.activation
            if act.kind == "none" and k < len(mlp.layers) - 1:
                raise HwmlpError("the cost model needs ReLU or QReLU hidden layers (non-negative activations)")
            masks = layer.masks if layer.masks is not None else np.full_like(layer.weights, full_mask(62))
            shape = (1, layer.n_outputs)
            width = np.full(shape, act.width or 0, dtype=np.int64)
            layers.append(_Layer(layer.weights[None], masks[None], layer.biases[None], act.kind,
                                 np.full(shape, act.lsb, dtype=np.int64), width))
        return self.report(_component_counts(layers, mlp.input_bits, np.array([mlp.argmax_drop_bits])))


@dataclass
class _Layer:
    """One layer of P designs: weights/masks (P, out, in), biases (P, out), activation
    kind, per-neuron QReLU low bit and width (P, out) (ignored unless qrelu)."""

    weights: np.ndarray
    masks: np.ndarray
    biases: np.ndarray
    kind: str
    lsb: np.ndarray
    width: np.ndarray


def _component_counts(layers: Sequence[_Layer], input_bits: int, argmax_drop: np.ndarray) -> np.ndarray:
    """(P, F) counts of every component of :data:`FEATURES` for P designs.

    Forward, layer by layer: input ranges -> heaps, sums, outputs. Backward: which
    neurons are live and which of their output bits are read (by the masks of the
    next layer's live neurons, or by the argmax); only those cost anything."""
    P, _, n_in = layers[0].weights.shape
    lo = np.zeros((P, n_in), dtype=np.int64)
    hi = np.full((P, n_in), full_mask(input_bits), dtype=np.int64)
    heaps = []
    for layer in layers:
        heaps.append(_NeuronHeaps(layer, lo, hi))
        lo, hi = heaps[-1].out_lo, heaps[-1].out_hi
    counts = np.zeros((P, len(FEATURES)))
    counts[:, _F["comparator_bit"]:], compared = _argmax(lo, hi, argmax_drop)
    live = compared & (lo != hi)  # output neurons whose varying value the argmax reads
    read = np.where(live, ~full_mask_of(argmax_drop)[:, None], 0)  # ... without the dropped bits
    for heap in reversed(heaps):
        per_neuron = np.concatenate([heap.adders, heap.activation_counts(read)], axis=2)
        counts[:, : len(_NEURON_FEATURES)] += (per_neuron * live[..., None]).sum(axis=1)
        readers = live[:, :, None] & (heap.layer.weights != 0) & (heap.variable_mask != 0)
        live = readers.any(axis=1)
        read = np.bitwise_or.reduce(np.where(readers, heap.variable_mask, 0), axis=1)
    return counts


class _NeuronHeaps:
    """Bit heaps, sum bounds and adder counts of one layer of P designs whose inputs
    lie in ``[in_lo, in_hi]`` (P, in), ``0 <= in_lo``."""

    def __init__(self, layer: _Layer, in_lo: np.ndarray, in_hi: np.ndarray):
        self.layer = layer
        W, b = layer.weights, layer.biases
        constant = (in_lo == in_hi)[:, None, :]
        reachable = layer.masks & full_mask_of(bit_length(in_hi))[:, None, :]
        #: (P, out, in) mask bits of the inputs that vary: the products' bits in the heap
        self.variable_mask = np.where(constant | (W == 0), 0, reachable)
        const_part = b + np.where(constant, W * (in_lo[:, None, :] & layer.masks), 0).sum(axis=2)
        products = W * self.variable_mask  # extreme value of each product, reached at x & m = m
        self.sum_lo = const_part + np.minimum(products, 0).sum(axis=2)
        self.sum_hi = const_part + np.maximum(products, 0).sum(axis=2)
        self.out_lo, self.out_hi = _activate(layer, self.sum_lo), _activate(layer, self.sum_hi)
        pos, neg = csd_masks(W)
        constant_bits = const_part - (neg * self.variable_mask).sum(axis=2)
        width = bits_for_range(self.sum_lo, self.sum_hi)
        #: (P, out, 4) full, half, constant-full and constant-half adders
        self.adders = _compress(_heap_columns(pos | neg, self.variable_mask), constant_bits, width)

    def activation_counts(self, read: np.ndarray) -> np.ndarray:
        """(P, out, 3) relu_bit, saturate_bit and saturate_detect per neuron, of which
        the output bits in the bit mask ``read`` (P, out) are used."""
        layer, lo, hi = self.layer, self.sum_lo, self.sum_hi
        out_bits = np.bitwise_count(read & full_mask_of(bit_length(self.out_hi))).astype(np.int64)
        relu = np.where((lo < 0) & (layer.kind != "none"), out_bits, 0)
        if layer.kind == "qrelu":
            above = layer.lsb + layer.width  # first sum bit above the slice
            overflow = ((hi >> above) > 0) & (out_bits > 0)
            saturate, detect = np.where(overflow, out_bits, 0), np.where(overflow, bit_length(hi) - above, 0)
        else:
            saturate = detect = np.zeros_like(relu)
        return np.stack([relu, saturate, detect], axis=2)


def _activate(layer: _Layer, s: np.ndarray) -> np.ndarray:
    if layer.kind == "none":
        return s
    if layer.kind == "relu":
        return np.maximum(s, 0)
    return np.clip(s >> layer.lsb, 0, full_mask_of(layer.width))


def _heap_columns(digits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """(P, out, C) number of variable partial-product bits per column: one per pair
    (CSD digit at exponent e, mask bit b) of each connection, in column e + b."""
    n_exp, n_bits = max(1, int(digits.max()).bit_length()), max(1, int(masks.max()).bit_length())
    D = ((digits[..., None] >> np.arange(n_exp)) & 1).astype(np.float32)  # (P, out, in, E)
    M = ((masks[..., None] >> np.arange(n_bits)) & 1).astype(np.float32)  # (P, out, in, B)
    pairs = np.matmul(D.swapaxes(2, 3), M)  # (P, out, E, B), exact small counts
    to_column = np.zeros((n_exp, n_bits, n_exp + n_bits - 1), dtype=np.float32)
    e, b = np.meshgrid(np.arange(n_exp), np.arange(n_bits), indexing="ij")
    to_column[e, b, e + b] = 1
    P, J = digits.shape[:2]
    return (pairs.reshape(P, J, -1) @ to_column.reshape(n_exp * n_bits, -1)).astype(np.int64)


def _compress(columns: np.ndarray, constant: np.ndarray, width: np.ndarray) -> np.ndarray:
    """(P, out, 4) full, half, constant-full and constant-half adders compressing each
    heap (variable bits per column, folded constant, sum width) to a single row."""
    C = int(width.max())
    active = np.arange(C) < width[..., None]
    const = ((constant & full_mask_of(width))[..., None] >> np.arange(C)) & 1
    bits = np.zeros(active.shape, dtype=np.int64)
    bits[..., : min(C, columns.shape[2])] = columns[..., :C]
    bits = (bits + const) * active
    carry = 0
    for c in range(C):  # t bits in a column send t // 2 carries to the next one, none beyond the top
        bits[..., c] = (bits[..., c] + carry) * active[..., c]
        carry = bits[..., c] >> 1
    half = (bits >= 2) & (bits % 2 == 0)
    const_adder = (const == 1) & (bits >= 2)
    full = np.maximum(bits - 1, 0) // 2 - (const_adder & ~half)
    return np.stack([full, half & ~const_adder, const_adder & ~half, const_adder & half], axis=2).sum(axis=3)


def _argmax(out_lo: np.ndarray, out_hi: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The argmax over C outputs in ``[out_lo, out_hi]`` (P, C) whose values lose
    ``drop`` (P,) low bits: (P, 4) comparator, constant comparator, multiplexer and
    constant multiplexer bits, and (P, C) which outputs it reads at all.

    The tree pairs neighbours level by level (an odd last node goes up as is); the
    right candidate wins only when strictly greater. A comparison the ranges decide
    (the right one always or never greater) folds away with its multiplexers and
    stops reading the loser; one with a constant operand is cheap. Each node but
    the root forwards its winner's value; every node forwards its winner's index,
    free while both indices are constant.
    """
    P, C = out_lo.shape
    d = drop[:, None]
    leaves = np.eye(C, dtype=bool)
    # per node: value range, whether its index varies, which outputs its value depends on
    nodes = [(lo, hi, np.zeros(P, dtype=bool), np.broadcast_to(leaves[k], (P, C)))
             for k, (lo, hi) in enumerate(zip((out_lo >> d).T, (out_hi >> d).T))]
    index_bits = max(1, (C - 1).bit_length())
    counts = np.zeros((P, 4), dtype=np.int64)  # comparator, const comparator, mux, const mux
    read = np.zeros((P, C), dtype=bool)
    while len(nodes) > 1:
        root = len(nodes) == 2
        nxt = []
        for (l_lo, l_hi, l_index, l_dep), (r_lo, r_hi, r_index, r_dep) in zip(nodes[::2], nodes[1::2]):
            right_always = r_lo > l_hi
            undecided = ~right_always & (r_hi > l_lo)  # both constant: always decided
            cheap = (l_lo == l_hi) | (r_lo == r_hi)
            w_lo = np.where(undecided, np.maximum(l_lo, r_lo), np.where(right_always, r_lo, l_lo))
            w_hi = np.where(undecided, np.maximum(l_hi, r_hi), np.where(right_always, r_hi, l_hi))
            compared = bits_for_range(np.minimum(l_lo, r_lo), np.maximum(l_hi, r_hi))
            forwarded = 0 if root else bits_for_range(w_lo, w_hi)
            counts += undecided[:, None] * np.stack([
                np.where(cheap, 0, compared),
                np.where(cheap, compared, 0),
                np.where(cheap, 0, forwarded) + np.where(l_index & r_index, index_bits, 0),
                np.where(cheap, forwarded, 0) + np.where(l_index ^ r_index, index_bits, 0),
            ], axis=1)
            both = l_dep | r_dep
            read |= undecided[:, None] & both
            w_index = undecided | np.where(right_always, r_index, l_index)
            w_dep = np.where(undecided[:, None], both, np.where(right_always[:, None], r_dep, l_dep))
            nxt.append((w_lo, w_hi, w_index, w_dep))
        nodes = nxt + nodes[len(nodes) - len(nodes) % 2:]
    return counts, read


# ----- integer helpers ------------------------------------------------------------


def bit_length(x: np.ndarray) -> np.ndarray:
    """Elementwise ``int.bit_length`` of non-negative int64 values."""
    x = np.asarray(x, dtype=np.int64)
    e = np.frexp(x.astype(np.float64))[1].astype(np.int64)
    # above 2**53 the float may round up to the next power of two: one bit too many
    return e - ((x >> np.maximum(e - 1, 0) == 0) & (x > 0))


def full_mask_of(bits: np.ndarray) -> np.ndarray:
    """Elementwise ``2**bits - 1``."""
    return (np.int64(1) << np.asarray(bits, dtype=np.int64)) - 1


def bits_for_range(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Elementwise :func:`hwmlp.intmlp.bits_for_range`: unsigned width when ``lo >= 0``,
    else two's-complement width."""
    unsigned = np.maximum(1, bit_length(np.maximum(hi, 0)))
    signed = 1 + np.maximum(bit_length(np.maximum(-lo - 1, 0)), bit_length(np.maximum(hi, 0)))
    return np.where(lo >= 0, unsigned, signed)


# ----- calibration ----------------------------------------------------------------------


def fit_calibration(
    counts: np.ndarray,
    area_um2: np.ndarray,
    leakage_nW: np.ndarray | None = None,
    model: CostModel | None = None,
    per_component: bool = True,
) -> Calibration:
    """Scale factors that best predict synthesized figures from component counts.

    ``counts`` (D, F): the :attr:`CostReport.counts` of D synthesized designs;
    ``area_um2`` (D,) their synthesized area, ``leakage_nW`` (D,) their leakage
    (None: leakage scales follow the area scales). Minimizes the squared *relative*
    error with non-negative scales (NNLS): one per component (``per_component``;
    components absent from every design keep scale 1), or one factor shared by all.
    """
    from scipy.optimize import nnls

    model = model or CostModel()
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != len(FEATURES) or len(counts) < 1:
        raise HwmlpError(f"calibration needs (designs, {len(FEATURES)}) component counts")

    def fit(measured, unit) -> dict[str, float]:
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (len(counts),) or (measured <= 0).any():
            raise HwmlpError("calibration needs one positive synthesized figure per design")
        A = counts * unit / measured[:, None]
        present = counts.any(axis=0)
        if per_component:
            scales = np.ones(len(FEATURES))
            scales[present] = nnls(A[:, present], np.ones(len(counts)))[0]
        else:
            scales = np.full(len(FEATURES), nnls(A.sum(axis=1, keepdims=True), np.ones(len(counts)))[0][0])
        return dict(zip(FEATURES, scales.tolist()))

    area = fit(area_um2, model.unit_area_um2)
    leak = fit(leakage_nW, model.unit_leakage_nW) if leakage_nW is not None else dict(area)
    return Calibration(area, leak)


def agreement(predicted, measured) -> dict[str, float]:
    """How well modelled figures match synthesized ones: Spearman rank correlation
    and the median of ``|predicted - measured| / measured``."""
    from scipy.stats import spearmanr

    predicted, measured = np.asarray(predicted, dtype=np.float64), np.asarray(measured, dtype=np.float64)
    if predicted.shape != measured.shape or len(measured) < 2:
        raise HwmlpError("agreement needs two equally long series of at least 2 figures")
    return {
        "spearman": float(spearmanr(predicted, measured).statistic),
        "median_relative_error": float(np.median(np.abs(predicted - measured) / measured)),
    }
