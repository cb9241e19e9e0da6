"""Amaranth generator: :class:`IntMLP` -> combinational bespoke circuit -> Verilog.

Interface of every generated circuit (the contract the testbenches rely on):

* ``x``: input, ``n_inputs * input_bits`` bits, feature ``i`` in bits
  ``[i*input_bits, (i+1)*input_bits)`` (feature 0 in the least significant bits),
  each an unsigned integer;
* ``y``: output, ``max(1, ceil(log2(n_outputs)))`` bits, the predicted class
  index (first maximum, as :meth:`IntMLP.predict`).

The circuit is purely combinational, weights and biases are hard-wired
constants, and every internal signal is sized from the interval bounds of
:meth:`IntMLP.value_ranges`, so no value is ever truncated.
"""

from __future__ import annotations

from amaranth.back import verilog
from amaranth.hdl import Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .intmlp import Activation, IntMLP, LayerRanges, bits_for_range


def output_bits(n_classes: int) -> int:
    """Width of the class-index output ``y``."""
    return max(1, (n_classes - 1).bit_length())


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


def top_name(mlp: IntMLP) -> str:
    """Verilog module name of the circuit for ``mlp`` (a valid identifier)."""
    clean = "".join(c if c.isalnum() else "_" for c in mlp.name.lower()).strip("_")
    return f"hwmlp_{clean or 'mlp'}"


def to_verilog(mlp: IntMLP, name: str | None = None) -> str:
    """Verilog text of the bespoke circuit; identical for identical models."""
    return verilog.convert(MLPCircuit(mlp), name=name or top_name(mlp), emit_src=False)
