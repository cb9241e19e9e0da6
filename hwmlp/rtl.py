"""Amaranth generators: :class:`IntMLP` -> combinational bespoke circuit -> Verilog.

Interface of every generated circuit (the contract the testbenches rely on):

* ``x``: input, ``n_inputs * input_bits`` bits, feature ``i`` in bits
  ``[i*input_bits, (i+1)*input_bits)`` (feature 0 in the least significant bits),
  each an unsigned integer;
* ``y``: output, ``max(1, ceil(log2(n_outputs)))`` bits, the predicted class
  index (first maximum, as :meth:`IntMLP.predict`).

Every circuit is purely combinational, with weights and biases hard-wired. The
structures (:data:`STRUCTURES`) compute the same function:

* ``"plain"`` (:class:`MLPCircuit`): behavioural arithmetic (``x * w + ...``) sized from
  :meth:`IntMLP.value_ranges`, left to the synthesis tool;
* ``"bitheap"`` (:class:`BitHeapMLPCircuit`, the default): bespoke arithmetic from
  :mod:`hwmlp.dontcare`, :mod:`hwmlp.ranges` and :mod:`hwmlp.arith`: constant and
  unused neurons removed (and don't-care bits when every input can be enumerated), one
  bit heap of canonical-signed-digit partial products per neuron compressed column by
  column, multiples of inputs shared by the neurons of a layer, NAND-level adders,
  ReLU and QReLU from the sign and bit slices, and a comparator-tree argmax on the
  bits it reads;
* ``"bitheap-dadda"``: the same with Dadda-tree compression.

:func:`choose_structure` synthesizes several structures and keeps the smallest.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .arith.classifier import BitHeapClassifier
from .arith.compare import index_bits
from .arith.logic import Logic
from .errors import HwmlpError
from .intmlp import Activation, IntMLP, LayerRanges, bits_for_range
from .io import write_text_atomic
from .synth import SynthResult, synthesize

#: Bit-heap compression of each bit-heap structure (see :meth:`~hwmlp.arith.bitheap.BitHeap.sum_bits`).
_COMPRESSION = {"bitheap": "ripple", "bitheap-dadda": "dadda"}

#: The circuit structures :func:`to_verilog` can generate.
STRUCTURES = ("plain", *_COMPRESSION)


def output_bits(n_classes: int) -> int:
    """Width of the class-index output ``y``."""
    return index_bits(n_classes)


def _shape(lo: int, hi: int):
    width = bits_for_range(lo, hi)
    return signed(width) if lo < 0 else unsigned(width)


class MLPCircuit(wiring.Component):
    """Combinational bespoke circuit computing ``IntMLP.predict`` for one sample."""

    def __init__(self, mlp: IntMLP):
        self.mlp = mlp
        super().__init__(
            {"x": In(mlp.n_inputs * mlp.input_bits), "y": Out(output_bits(mlp.n_outputs))}
        )

    def elaborate(self, platform):
        m = Module()
        mlp = self.mlp
        b = mlp.input_bits
        h: list[Value] = [self.x[i * b : (i + 1) * b] for i in range(mlp.n_inputs)]
        for li, (layer, r) in enumerate(zip(mlp.layers, mlp.value_ranges())):
            h = [self._neuron(m, li, j, layer, r, h) for j in range(layer.n_outputs)]
        m.d.comb += self.y.eq(self._argmax(m, h))
        return m

    def _neuron(self, m: Module, li: int, j: int, layer, r: LayerRanges, h: list[Value]) -> Value:
        total = Const(int(layer.biases[j]), _shape(int(layer.biases[j]), int(layer.biases[j])))
        for i, w in enumerate(layer.weights[j].tolist()):
            if w == 0:
                continue
            xi = h[i]
            if layer.masks is not None:
                mask = int(layer.masks[j, i])
                if mask == 0:
                    continue
                xi = xi & Const(mask, unsigned(max(1, mask.bit_length())))
            total = total + xi * w
        s = Signal(_shape(r.sum_lo[j], r.sum_hi[j]), name=f"l{li}_n{j}_sum")
        m.d.comb += s.eq(total)
        out = Signal(_shape(r.out_lo[j], r.out_hi[j]), name=f"l{li}_n{j}_out")
        m.d.comb += out.eq(_activate(layer.activation, s))
        return out

    def _argmax(self, m: Module, values: list[Value]) -> Value:
        """Tree of comparators; the right (higher-index) side wins only when strictly greater,
        so ties go to the lowest index."""
        drop = self.mlp.argmax_drop_bits
        nodes = [(Const(k, self.y.shape()), v.shift_right(drop) if drop else v) for k, v in enumerate(values)]
        level = 0
        while len(nodes) > 1:
            nxt = []
            for p in range(0, len(nodes) - 1, 2):
                (li, lv), (ri, rv) = nodes[p], nodes[p + 1]
                right = Signal(name=f"argmax{level}_{p // 2}_right")
                m.d.comb += right.eq(rv > lv)
                nxt.append((Mux(right, ri, li), Mux(right, rv, lv)))
            if len(nodes) % 2:
                nxt.append(nodes[-1])
            nodes = nxt
            level += 1
        return nodes[0][0]


def _activate(act: Activation, s: Signal) -> Value:
    if act.kind == "none":
        return s
    negative = s < 0
    if act.kind == "relu":
        return Mux(negative, 0, s)
    top = (1 << act.width) - 1
    saturated = s >= (1 << (act.msb + 1))
    return Mux(negative, 0, Mux(saturated, top, s.shift_right(act.lsb)))


class BitHeapMLPCircuit(wiring.Component):
    """Combinational circuit computing ``IntMLP.predict`` with bespoke arithmetic: the
    gates of a :class:`~hwmlp.arith.classifier.BitHeapClassifier` (kept as :attr:`design`)
    behind the ``x``/``y`` ports; ``options`` are the classifier's keyword arguments."""

    def __init__(self, mlp: IntMLP, **options):
        self.design = BitHeapClassifier(mlp, **options)
        super().__init__(
            {"x": In(mlp.n_inputs * mlp.input_bits), "y": Out(output_bits(mlp.n_outputs))}
        )

    def elaborate(self, platform):
        m = Module()
        index = self.design.build(Logic(m), [self.x[k] for k in range(self.x.shape().width)])
        m.d.comb += self.y.eq(Cat(*(Const(v, 1) if isinstance(v, int) else v for v in index.bits)))
        return m


def top_name(mlp: IntMLP) -> str:
    """Verilog module name of the circuit for ``mlp`` (a valid identifier)."""
    clean = "".join(c if c.isalnum() else "_" for c in mlp.name.lower()).strip("_")
    return f"hwmlp_{clean or 'mlp'}"


def circuit(mlp: IntMLP, structure: str = "bitheap") -> wiring.Component:
    """The Amaranth circuit of ``mlp`` in one of :data:`STRUCTURES`."""
    if structure == "plain":
        return MLPCircuit(mlp)
    if structure in _COMPRESSION:
        return BitHeapMLPCircuit(mlp, compression=_COMPRESSION[structure])
    raise HwmlpError(f"unknown circuit structure {structure!r}: use one of {', '.join(STRUCTURES)}")


def to_verilog(mlp: IntMLP, name: str | None = None, structure: str = "bitheap") -> str:
    """Verilog text of the circuit of ``mlp`` in ``structure``; identical for identical models."""
    return verilog.convert(circuit(mlp, structure), name=name or top_name(mlp), emit_src=False)


@dataclass
class StructureChoice:
    """Result of :func:`choose_structure`: the chosen ``structure``, its Verilog file,
    and the synthesis result of every structure tried."""

    structure: str
    verilog: Path
    results: dict[str, SynthResult]

    @property
    def result(self) -> SynthResult:
        return self.results[self.structure]


def choose_structure(
    mlp: IntMLP,
    workdir: str | Path,
    structures: tuple[str, ...] = ("bitheap", "bitheap-dadda"),
    vectors=None,
) -> StructureChoice:
    """Synthesize ``mlp`` in each of ``structures`` and choose the smallest area (then
    the lowest power). Writes ``<workdir>/<structure>/`` (the Verilog and the synthesis
    files); ``vectors`` go to :func:`~hwmlp.synth.synthesize` for switching activity."""
    top = top_name(mlp)
    results, paths = {}, {}
    for structure in structures:
        d = Path(workdir) / structure
        d.mkdir(parents=True, exist_ok=True)
        paths[structure] = d / f"{top}.v"
        write_text_atomic(paths[structure], to_verilog(mlp, structure=structure))
        results[structure] = synthesize(paths[structure], top, d / "synth", vectors=vectors)
    best = min(structures, key=lambda s: (results[s].area_um2, results[s].power_mW))
    return StructureChoice(best, paths[best], results)
