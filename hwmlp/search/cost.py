"""Fast hardware cost model of the ``bitheap`` circuits, vectorized over a population.

The model counts, per design, the building blocks that :mod:`hwmlp.arith` (the
default ``bitheap`` structure of :mod:`hwmlp.rtl`) generates, following its
simplifications:

* **Bit heaps.** The sum ``b + sum_i w_i * (h_i & m_i)`` of every neuron is one
  **BitHeap**: each CSD digit ``±2**e`` of ``w_i`` and each bit ``b`` that the
  **PartialProductMask** ``m_i`` keeps (and the input can actually set) puts one bit
  in column ``e + b``; a negative digit adds the inverted bit (one inverter per
  input bit and layer, shared; none for a ReLU/QReLU output ANDed with its inverted
  sign, which is the inverse of a NAND) and the constant ``-2**(e+b)``. The bias, those
  constants and the products of constant inputs fold into one constant whose
  two's-complement bits (over the sum's width) join the heap, first in their column.
* **Compression** column by column, least significant first, exactly as
  :meth:`~hwmlp.arith.bitheap.BitHeap.sum_bits` (``ripple``) does: ``t`` bits in a
  column (carries in included) take ``(t - 1) // 2`` three-input steps and, when ``t``
  is even, one two-input step, and send ``t // 2`` carries on. The column's constant
  1 feeds the first step (a cheaper constant adder). Only logic whose result is used
  counts: a column whose carries feed no needed sum bit computes sums only (the
  heap's top column among them), the last step of a column whose sum bit no reader
  needs computes the carry alone, and a column with neither is dead. The model
  counts exactly the generator's NAND gates of every heap (tested).
* **Activations** on the output bits that are read: ReLU/QReLU zeroing when the sum
  can be negative, QReLU saturation (an OR over the sum bits above the slice) when
  it can exceed the slice.
* **Argmax**: a tree of ripple comparators over the output values without their
  dropped bits, with multiplexers of the intermediate winners' values and indices.
  Bits where one operand is a constant (a constant neuron, a zero extension, an
  index bit a node cannot vary) take cheap cells; comparisons that the value ranges
  decide fold away (synthesis removes them: their outcome is a constant function of
  the inputs) and stop reading the loser.
* **Dead logic costs nothing**: a hidden neuron that no live neuron of the next layer
  reads (zero weight, zero mask, constant output) is dropped, and so are output bits
  nobody reads, as in :func:`hwmlp.ranges.analyze`.

Value ranges are interval bounds (exact per product, as :mod:`hwmlp.ranges`). Not
modelled: the multiples an input shares between the neurons of a layer
(:mod:`hwmlp.arith.sharing`, a few percent at most on search designs), don't-care
bits and exact ranges of models with at most 16-20 input bits, and the threshold
decision that replaces the output layer when it reads a single value.

Every component maps to EGFET cells by :data:`COMPONENTS`: the NAND2/NOT network
:class:`~hwmlp.arith.logic.Logic` builds for it, which Yosys+ABC largely keeps.
Area is in um^2, power is leakage in nW (the synthesized designs' dynamic power is
under 1% of their total). A :class:`Calibration` scales every component; the
default (:meth:`Calibration.default`, ``calibration.json`` next to this module) is
fitted by ``bench/calibrate_cost.py`` against real synthesis of generated circuits
with :func:`fit_calibration` (one area and one leakage factor: ABC's mapping of the
NAND networks); :func:`agreement` reports how well a model ranks and predicts a set
of synthesized designs. Synthesis shrinks some circuits far more than the model
knows, mostly classifiers whose many outputs read two or three hidden neurons (ABC
finds redundancy between their sums and comparators).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from ..errors import HwmlpError
from ..intmlp import IntMLP
from ..io import read_json
from ..tech import EGFET_1V0, Technology
from .approx import csd_masks
from .genome import Genome, GenomeBatch, SearchSpace, full_mask

#: Cells of every cost-model component: the network :class:`hwmlp.arith.logic.Logic` builds.
COMPONENTS: Mapping[str, Mapping[str, int]] = {
    # heap compression (hwmlp.arith.bitheap, ripple)
    "full_adder": {"NAND2X1": 9},  # the nine-NAND full adder
    "half_adder": {"NAND2X1": 4, "INVX1": 1},  # XOR (4 NAND) and AND
    "const_full_adder": {"NAND2X1": 4, "INVX1": 1},  # a + b + 1: XNOR and OR
    "const_half_adder": {"INVX1": 1},  # a + 1: sum NOT a, carry a
    "top_full_adder": {"NAND2X1": 8},  # sum alone (two XORs) of a column whose carries are unused
    "top_half_adder": {"NAND2X1": 4},  # ... of two bits: one XOR
    "carry_adder": {"NAND2X1": 4, "INVX1": 2},  # carry alone (majority) of a column's unread sum
    "carry_half_adder": {"NAND2X1": 1, "INVX1": 1},  # ... of two bits: AND
    "const_carry_adder": {"NAND2X1": 1, "INVX1": 2},  # ... of two bits and a constant 1: OR
    "inverted_bit": {"INVX1": 1},  # an input bit entering a layer's heaps negated
    # activations (hwmlp.arith.neuron)
    "relu_bit": {"NAND2X1": 1, "INVX1": 1},  # output bit AND NOT sign
    "saturate_bit": {"NAND2X1": 1, "INVX1": 1},  # QReLU output bit OR overflow
    "saturate_detect": {"NAND2X1": 1, "INVX1": 2},  # one OR of the overflow tree
    # argmax (hwmlp.arith.compare)
    "comparator_bit": {"NAND2X1": 4, "INVX1": 2},  # borrow cell majority(a, NOT b, c)
    "const_comparator_bit": {"NAND2X1": 1, "INVX1": 1},  # borrow cell against a constant: AND / OR
    "mux_bit": {"NAND2X1": 3},  # 2:1 multiplexer (the select's inverter is shared)
    "const_mux_bit": {"NAND2X1": 1, "INVX1": 1},  # multiplexer between a signal and a constant
}
FEATURES: tuple[str, ...] = tuple(COMPONENTS)
_F = {name: k for k, name in enumerate(FEATURES)}
_ADDERS = FEATURES[: _F["inverted_bit"]]
_ACTIVATION = FEATURES[_F["relu_bit"] : _F["comparator_bit"]]
_ARGMAX = FEATURES[_F["comparator_bit"] :]

#: Component groups sharing one scale factor in a grouped :func:`fit_calibration`.
COMPONENT_GROUPS: Mapping[str, str] = {
    **dict.fromkeys(_ADDERS + ("inverted_bit",), "heap"),
    **dict.fromkeys(_ACTIVATION, "activation"),
    **dict.fromkeys(_ARGMAX, "argmax"),
}

#: The calibration :class:`CostModel` uses by default, written by ``bench/calibrate_cost.py``.
DEFAULT_CALIBRATION = Path(__file__).with_name("calibration.json")
CALIBRATION_FORMAT = "hwmlp.cost-calibration"


@dataclass
class Calibration:
    """Per-component scale factors applied to the modelled area and leakage
    (1.0: the cells of :data:`COMPONENTS` as they are). ``technology``: the name of
    the technology the factors were fitted for (None: not tied to one)."""

    area_scale: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 1.0))
    leakage_scale: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 1.0))
    technology: str | None = None

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
        return {"technology": self.technology, "area_scale": dict(self.area_scale),
                "leakage_scale": dict(self.leakage_scale)}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        return cls(dict(d.get("area_scale", {})), dict(d.get("leakage_scale", {})), d.get("technology"))

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        """A calibration file as ``bench/calibrate_cost.py`` writes it (format
        :data:`CALIBRATION_FORMAT`; its other entries document the fit)."""
        d = read_json(Path(path), "cost-model calibration", "run bench/calibrate_cost.py --write-calibration")
        if not isinstance(d, dict) or d.get("format") != CALIBRATION_FORMAT:
            raise HwmlpError(f"{path} is not an {CALIBRATION_FORMAT} file")
        return cls.from_dict(d)

    @classmethod
    def default(cls) -> "Calibration":
        """A copy of the calibration shipped with the package (:data:`DEFAULT_CALIBRATION`,
        read once)."""
        return cls.from_dict(_default_calibration())


@lru_cache(maxsize=1)
def _default_calibration() -> dict:
    return Calibration.load(DEFAULT_CALIBRATION).to_dict()


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
    ``tech`` and a :class:`Calibration`.

    ``calibration`` None: :meth:`Calibration.default` when it was fitted for ``tech``,
    else none (all scales 1). A calibration fitted for another technology is refused.
    """

    def __init__(self, tech: Technology = EGFET_1V0, calibration: Calibration | None = None):
        if calibration is None:
            default = Calibration.default()
            calibration = default if default.technology == tech.name else Calibration()
        if calibration.technology not in (None, tech.name):
            raise HwmlpError(f"calibration fitted for {calibration.technology}, not for {tech.name}")
        self.tech = tech
        self.calibration = calibration
        self.unit_area_um2 = np.array([self._cells(n, "area_um2") for n in FEATURES])
        self.unit_leakage_nW = np.array([self._cells(n, "leakage_nW") for n in FEATURES])
        self._area = self.unit_area_um2 * [calibration.area_scale[n] for n in FEATURES]
        self._leakage = self.unit_leakage_nW * [calibration.leakage_scale[n] for n in FEATURES]

    def _cells(self, component: str, figure: str) -> float:
        return sum(k * getattr(self.tech.cell(c), figure) for c, k in COMPONENTS[component].items())

    def report(self, counts: np.ndarray) -> CostReport:
        """Area and leakage of designs with the given component counts (P, F)."""
        return CostReport(counts, counts @ self._area, counts @ self._leakage)

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
    inverse_free = np.zeros((P, n_in), dtype=bool)
    for layer in layers:
        heaps.append(_NeuronHeaps(layer, lo, hi, inverse_free))
        lo, hi = heaps[-1].out_lo, heaps[-1].out_hi
        inverse_free = heaps[-1].sum_lo < 0  # output bits ANDed with NOT sign: a NAND's inverse
    counts = np.zeros((P, len(FEATURES)))
    counts[:, _F["comparator_bit"]:], compared = _argmax(lo, hi, argmax_drop)
    live = compared & (lo != hi)  # output neurons whose varying value the argmax reads
    read = np.where(live, ~full_mask_of(argmax_drop)[:, None], 0)  # ... without the dropped bits
    for heap in reversed(heaps):
        counts[:, : _F["comparator_bit"]] += heap.counts(live, read)
        readers = live[:, :, None] & (heap.layer.weights != 0) & (heap.variable_mask != 0)
        live = readers.any(axis=1)
        read = np.bitwise_or.reduce(np.where(readers, heap.variable_mask, 0), axis=1)
    return counts


class _NeuronHeaps:
    """Bit heaps and bounds of one layer of P designs whose inputs lie in
    ``[in_lo, in_hi]`` (P, in), ``0 <= in_lo``; ``inverse_free`` (P, in): inputs
    whose bits come with their inverses (no inverter for a negated bit)."""

    def __init__(self, layer: _Layer, in_lo: np.ndarray, in_hi: np.ndarray, inverse_free: np.ndarray):
        self.layer = layer
        self.inverse_free = inverse_free
        W, b = layer.weights, layer.biases
        constant = (in_lo == in_hi)[:, None, :]
        reachable = layer.masks & full_mask_of(bit_length(in_hi))[:, None, :]
        #: (P, out, in) mask bits of the inputs that vary: the products' bits in the heap
        self.variable_mask = np.where(constant | (W == 0), 0, reachable)
        const_part = b + np.where(constant, W * (in_lo[:, None, :] & layer.masks), 0).sum(axis=2)
        products = W * max_and(in_hi[:, None, :], self.variable_mask)  # extreme value of each product
        self.sum_lo = const_part + np.minimum(products, 0).sum(axis=2)
        self.sum_hi = const_part + np.maximum(products, 0).sum(axis=2)
        self.out_lo, self.out_hi = _activate(layer, self.sum_lo), _activate(layer, self.sum_hi)
        pos, neg = csd_masks(W)
        self.negated = np.where(neg != 0, self.variable_mask, 0)  # (P, out, in) input bits entering negated
        self.constant_bits = const_part - (neg * self.variable_mask).sum(axis=2)
        self.width = bits_for_range(self.sum_lo, self.sum_hi)
        self.columns = _heap_columns(pos | neg, self.variable_mask)

    def counts(self, live: np.ndarray, read: np.ndarray) -> np.ndarray:
        """(P, 13) heap and activation components of the neurons ``live`` (P, out),
        whose output bits in the bit masks ``read`` (P, out) are used."""
        per_neuron = np.concatenate([
            _compress(self.columns, self.constant_bits, self.width, self.needed_sum_bits(read)),
            self.activation_counts(read),
        ], axis=2)
        inverted = np.bitwise_or.reduce(np.where(live[:, :, None], self.negated, 0), axis=1)
        inverted = np.where(self.inverse_free, 0, inverted)
        counts = (per_neuron * live[..., None]).sum(axis=1)
        return np.insert(counts, len(_ADDERS), np.bitwise_count(inverted).sum(axis=1), axis=1)

    def needed_sum_bits(self, read: np.ndarray) -> np.ndarray:
        """(P, out) bit masks of the sum bits the activation needs for the output bits
        ``read`` (as :func:`hwmlp.arith.neuron.sum_bits_needed`)."""
        layer, w = self.layer, self.width
        signed = self.sum_lo < 0
        sign = np.where(signed, np.int64(1) << (w - 1), 0)
        if layer.kind == "none":  # bits read above the sign are its extension
            return (read & full_mask_of(w)) | np.where((read >> (w - 1)) != 0, sign, 0)
        out_read = read & full_mask_of(bit_length(self.out_hi))
        if layer.kind == "relu":
            return out_read | sign
        body = full_mask_of(w - signed)
        above = layer.lsb + layer.width  # first sum bit above the slice
        saturation = np.where(self.sum_hi >> above > 0, body & ~full_mask_of(above), 0)
        return ((out_read << layer.lsb) & body) | saturation | sign

    def activation_counts(self, read: np.ndarray) -> np.ndarray:
        """(P, out, 3) relu_bit, saturate_bit and saturate_detect per neuron, of which
        the output bits in the bit mask ``read`` (P, out) are used."""
        layer, lo, hi = self.layer, self.sum_lo, self.sum_hi
        out_bits = np.bitwise_count(read & full_mask_of(bit_length(self.out_hi))).astype(np.int64)
        relu = np.where((lo < 0) & (layer.kind != "none"), out_bits, 0)
        if layer.kind == "qrelu":
            above = layer.lsb + layer.width
            overflow = ((hi >> above) > 0) & (out_bits > 0)
            detect = self.width - (lo < 0) - above - 1  # ORs over the sum bits above the slice
            saturate, detect = np.where(overflow, out_bits, 0), np.where(overflow, detect, 0)
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


def _compress(columns: np.ndarray, constant: np.ndarray, width: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """(P, out, 9) adders of each heap, in the order of the first nine :data:`FEATURES`,
    given its variable bits per column (P, out, C), folded constant, sum width and
    needed sum bits as a bit mask ((P, out) each), reduced as
    :meth:`~hwmlp.arith.bitheap.BitHeap.sum_bits` (``ripple``) does.

    A column of ``t`` bits (its constant 1 first) takes ``(t - 1) // 2`` three-input
    steps, then one two-input step when ``t`` is even; the constant enters the first
    step. Only logic whose result is used counts (synthesis removes the rest): a
    column's carries are used when the next column's sum bit is needed or its own
    carries are used (and it has two bits or more to add). A column whose sum is
    needed but whose carries are not (the heap's top column, whose carries are
    dropped, among them) computes sums only; one whose carries are used but whose sum
    is not has its last step compute the carry only (a constant half adder's carry
    is its input: no gate); one with neither is dead."""
    C = int(width.max())
    cols = np.arange(C)
    q = (((constant & full_mask_of(width))[..., None] >> cols) & 1) == 1  # constant 1 in the column
    bits = np.zeros(q.shape, dtype=np.int64)
    bits[..., : min(C, columns.shape[2])] = columns[..., :C]
    bits += q
    carry = 0
    for c in range(C):  # t bits in a column send t // 2 carries to the next one
        bits[..., c] += carry
        carry = bits[..., c] >> 1
    sum_used = ((needed & full_mask_of(width))[..., None] >> cols) & 1 == 1
    carries_used = np.zeros(q.shape, dtype=bool)
    for c in range(C - 2, -1, -1):
        carries_used[..., c] = sum_used[..., c + 1] | (carries_used[..., c + 1] & (bits[..., c + 1] >= 2))
    bits *= sum_used | carries_used
    sum_only, carry_only = sum_used & ~carries_used, ~sum_used & carries_used & (bits >= 2)
    const_full, const_half = q & (bits >= 3), q & (bits == 2)
    only_const = const_full & (bits == 3)  # the constant's step is the column's only one
    plain3 = np.maximum(bits - 1, 0) // 2 - const_full  # three-input steps without the constant
    plain2 = (bits >= 2) & (bits % 2 == 0) & ~const_half  # the two-input step without it
    last3 = (bits % 2 == 1) & (bits >= 3) & ~only_const  # the last step is a plain three-input one
    counts = [
        plain3 * ~sum_only - (carry_only & last3),
        plain2 & ~sum_only & ~carry_only,
        const_full & ~(carry_only & only_const),
        const_half & ~carry_only,
        plain3 * sum_only,
        plain2 & sum_only,
        carry_only & last3,
        carry_only & plain2,
        carry_only & only_const,
    ]
    return np.stack(counts, axis=2).sum(axis=3)


def _argmax(out_lo: np.ndarray, out_hi: np.ndarray, drop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The argmax over C outputs in ``[out_lo, out_hi]`` (P, C) whose values lose
    ``drop`` (P,) low bits: (P, 4) comparator, constant comparator, multiplexer and
    constant multiplexer bits, and (P, C) which outputs it reads at all.

    The tree pairs neighbours level by level (an odd last node goes up as is); the
    right candidate wins only when strictly greater, as :func:`hwmlp.arith.compare.argmax`.
    Operands are compared and multiplexed in their common format (the wider width,
    signed when either is); a bit where both operands vary takes a full cell, one
    where only one varies (a constant value, a zero extension, an index bit that
    cannot differ among a node's candidates) a cheap cell, one where neither varies
    nothing. A comparison the ranges decide (the right one always or never greater)
    folds away: its winner goes up as is. Synthesis removes the logic whose result
    is never used, so, walking the tree back from the root (whose index is the
    output): a node's comparison costs only when its value or index is used, its
    value multiplexer only when its value is (compared by an undecided ancestor),
    its index multiplexer only when its index is (it may be the final winner).
    """
    P, C = out_lo.shape
    d = drop[:, None]
    lo, hi = out_lo >> d, out_hi >> d
    n_index = max(1, (C - 1).bit_length())
    index_bit = (np.arange(C)[:, None] >> np.arange(n_index)) & 1 == 1  # (C, index bits)
    # per node: value range, bits that vary, signed, candidate winners (P, C)
    nodes = [
        (lo[:, k], hi[:, k], np.where(lo[:, k] == hi[:, k], 0, bits_for_range(lo[:, k], hi[:, k])),
         lo[:, k] < 0, np.broadcast_to(np.eye(C, dtype=bool)[k], (P, C)))
        for k in range(C)
    ]
    levels = []  # per level: (undecided, right_always, (P, 6) costs) of every pair
    while len(nodes) > 1:
        pairs, nxt = [], []
        for (l_lo, l_hi, l_var, l_signed, l_cand), (r_lo, r_hi, r_var, r_signed, r_cand) in zip(
                nodes[::2], nodes[1::2]):
            right_always = r_lo > l_hi
            undecided = ~right_always & (r_hi > l_lo)  # both constant: always decided
            signed = l_signed | r_signed
            n = np.maximum(l_var + (signed & ~l_signed), r_var + (signed & ~r_signed))
            l_bits = np.where(l_signed & (l_var > 0), n, l_var)  # a sign extension varies
            r_bits = np.where(r_signed & (r_var > 0), n, r_var)
            both, one = np.minimum(l_bits, r_bits), np.abs(l_bits - r_bits)
            pairs.append((undecided, right_always, np.stack([both, one, *_index_bits_varying(l_cand, r_cand, index_bit)],
                                                            axis=1)))
            pick = lambda a, b: np.where(right_always, b, a)  # noqa: E731  winner of a decided pair
            nxt.append((
                np.where(undecided, np.maximum(l_lo, r_lo), pick(l_lo, r_lo)),
                np.where(undecided, np.maximum(l_hi, r_hi), pick(l_hi, r_hi)),
                np.where(undecided, np.maximum(l_bits, r_bits), pick(l_var, r_var)),
                np.where(undecided, signed, pick(l_signed, r_signed)),
                np.where(undecided[:, None], l_cand | r_cand, np.where(right_always[:, None], r_cand, l_cand)),
            ))
        levels.append(pairs)
        nodes = nxt + nodes[len(pairs) * 2:]
    counts = np.zeros((P, 4), dtype=np.int64)  # comparator, const comparator, mux, const mux
    value_used, index_used = [np.zeros(P, dtype=bool)], [np.ones(P, dtype=bool)]  # of the root
    for pairs in reversed(levels):
        child_value, child_index = [], []
        for (undecided, right_always, cost), v, i in zip(pairs, value_used, index_used):
            compared = undecided & (v | i)
            counts[:, :2] += compared[:, None] * cost[:, :2]
            counts[:, 2:] += (undecided & v)[:, None] * cost[:, :2] + (undecided & i)[:, None] * cost[:, 2:]
            left_wins, right_wins = ~undecided & ~right_always, right_always
            child_value += [compared | (left_wins & v), compared | (right_wins & v)]
            child_index += [i & (undecided | left_wins), i & (undecided | right_wins)]
        value_used = child_value + value_used[len(pairs):]
        index_used = child_index + index_used[len(pairs):]
    return counts, np.stack(value_used, axis=1)


def _index_bits_varying(l_cand: np.ndarray, r_cand: np.ndarray, index_bit: np.ndarray):
    """(P,) index bits where both sides' candidate indices vary, and where exactly one does."""
    def varying(cand):  # (P, index bits): some candidate has the bit set and some has it clear
        return (cand @ index_bit > 0) & (cand @ ~index_bit > 0)

    vl, vr = varying(l_cand), varying(r_cand)
    return (vl & vr).sum(axis=1), (vl ^ vr).sum(axis=1)


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


def max_and(hi: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Elementwise largest ``x & mask`` over ``0 <= x <= hi`` (``hi, mask >= 0``;
    vectorized :func:`hwmlp.intmlp._max_and`): ``hi`` itself, or ``hi`` with one set
    bit cleared and every bit below it set."""
    hi, mask = np.broadcast_arrays(np.asarray(hi, dtype=np.int64), np.asarray(mask, dtype=np.int64))
    best = hi & mask
    for b in range(int(bit_length(hi.max(initial=0)))):
        below = full_mask_of(b)
        candidate = np.where((hi >> b) & 1 == 1, (hi & ~(below << 1 | 1)) | below, 0)
        best = np.maximum(best, candidate & mask)
    return best


def bits_for_range(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Elementwise :func:`hwmlp.intmlp.bits_for_range`: unsigned width when ``lo >= 0``,
    else two's-complement width."""
    unsigned = np.maximum(1, bit_length(np.maximum(hi, 0)))
    signed = 1 + np.maximum(bit_length(np.maximum(-lo - 1, 0)), bit_length(np.maximum(hi, 0)))
    return np.where(lo >= 0, unsigned, signed)


# ----- calibration ----------------------------------------------------------------------


#: Rounds of reweighting, and the smallest absolute log ratio a weight divides by, in :func:`fit_calibration`.
FIT_ITERATIONS = 50
FIT_ERROR_FLOOR = 1e-3


def fit_calibration(
    counts: np.ndarray,
    area_um2: np.ndarray,
    leakage_nW: np.ndarray | None = None,
    model: CostModel | None = None,
    groups: Mapping[str, str] | None = None,
    technology: str | None = None,
) -> Calibration:
    """Scale factors that best predict synthesized figures from component counts.

    ``counts`` (D, F): the :attr:`CostReport.counts` of D synthesized designs;
    ``area_um2`` (D,) their synthesized area, ``leakage_nW`` (D,) their leakage
    (None: leakage scales follow the area scales); ``model``: the cells' figures
    (default: :data:`~hwmlp.tech.EGFET_1V0`, uncalibrated). Minimizes the mean
    absolute *log* ratio of modelled to synthesized figures (symmetric, and robust to
    the few designs that synthesis shrinks far more than the model can know) with
    non-negative scales, one per group of components: ``groups`` maps every component
    to its group's name (e.g. :data:`COMPONENT_GROUPS`; None: each component alone).
    Components of a group absent from every design keep scale 1; designs without any
    modelled component carry no information and are left out. ``technology``:
    recorded in the result (default: the model's).

    The fit starts from the unscaled model and runs :data:`FIT_ITERATIONS` rounds of
    iteratively reweighted non-negative least squares on the log ratios linearized
    at the current scales, each design weighted by the inverse of its absolute log
    ratio (floored at :data:`FIT_ERROR_FLOOR`).
    """
    from scipy.optimize import nnls

    model = model or CostModel(calibration=Calibration())
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[1] != len(FEATURES) or len(counts) < 1:
        raise HwmlpError(f"calibration needs (designs, {len(FEATURES)}) component counts")
    groups = dict(groups) if groups is not None else {name: name for name in FEATURES}
    if set(groups) != set(FEATURES):
        raise HwmlpError(f"calibration groups must name every component once: {list(FEATURES)}")
    names = sorted(set(groups.values()))
    member = np.array([[groups[f] == g for g in names] for f in FEATURES], dtype=np.float64)  # (F, G)

    def fit(measured, unit) -> dict[str, float]:
        measured = np.asarray(measured, dtype=np.float64)
        if measured.shape != (len(counts),) or (measured <= 0).any():
            raise HwmlpError("calibration needs one positive synthesized figure per design")
        A = (counts * unit / measured[:, None]) @ member  # (D, G): modelled / synthesized of each group
        present = A.any(axis=0)
        A = A[A.any(axis=1)][:, present]
        x = np.ones(A.shape[1])
        for _ in range(FIT_ITERATIONS):
            ratio = np.maximum(A @ x, 1e-12)
            log_ratio = np.log(ratio)
            root = 1.0 / np.sqrt(np.maximum(np.abs(log_ratio), FIT_ERROR_FLOOR))
            # log(A x) ~ log(ratio) + (A x - ratio) / ratio = 0
            x = nnls(A / ratio[:, None] * root[:, None], (1.0 - log_ratio) * root)[0]
        scales = np.ones(len(names))
        scales[present] = x
        return dict(zip(FEATURES, (member @ scales).tolist()))

    area = fit(area_um2, model.unit_area_um2)
    leak = fit(leakage_nW, model.unit_leakage_nW) if leakage_nW is not None else dict(area)
    return Calibration(area, leak, technology or model.tech.name)


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
