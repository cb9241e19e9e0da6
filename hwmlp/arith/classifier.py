"""A whole classifier as gates: bit-heap neurons, layer by layer, and the argmax.

:class:`BitHeapClassifier` takes an :class:`~hwmlp.intmlp.IntMLP`, simplifies it
(:func:`~hwmlp.dontcare.drop_dont_care_bits`, :func:`~hwmlp.ranges.analyze`) and
builds its logic with a :class:`~hwmlp.arith.logic.Logic`: each computed neuron is
one bit heap plus its activation (:mod:`hwmlp.arith.neuron`), fed where it saves
heap bits with multiples of an input shared by the whole layer
(:mod:`hwmlp.arith.sharing`); constant neurons are constants, removed neurons have
no logic, and the class index comes from a comparator tree
(:func:`~hwmlp.arith.compare.argmax`) on the bits left after ``argmax_drop_bits``,
or, when the class depends on one value only, from thresholds on that value
(:mod:`hwmlp.arith.decision`). Each neuron computes only the output bits its
readers use.
:meth:`BitHeapClassifier.simulate` evaluates the gates themselves on input vectors.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Signal

from ..dontcare import MAX_INPUT_BITS, drop_dont_care_bits
from ..intmlp import IntMLP
from ..ranges import RangeAnalysis, analyze
from .compare import argmax, index_bits
from .csd import csd
from .decision import ThresholdRule, threshold_index, threshold_rule
from .logic import Bit, Logic
from .neuron import Product, neuron_output
from .sharing import choose_fundamental, multiple_word, split_factor
from .word import Word


class BitHeapClassifier:
    """The gate-level classifier of ``mlp`` (computes ``mlp.predict``).

    ``compression``: how each bit heap is compressed (see
    :meth:`~hwmlp.arith.bitheap.BitHeap.sum_bits`). ``dont_care_input_bits``: search
    don't-care bits when the model has at most this many input bits (0: never).
    ``share_multiples``: share multiples of inputs between the neurons of a layer.
    :attr:`model` (the simplified model, same predictions), :attr:`dont_care` and
    :attr:`analysis` keep what the simplification found; :attr:`decision` is the
    :class:`~hwmlp.arith.decision.ThresholdRule` that replaces the output layer, or None.
    """

    def __init__(
        self,
        mlp: IntMLP,
        compression: str = "ripple",
        dont_care_input_bits: int = MAX_INPUT_BITS,
        share_multiples: bool = True,
    ):
        self.mlp = mlp
        self.share_multiples = share_multiples
        self.model, self.dont_care = drop_dont_care_bits(mlp, dont_care_input_bits)
        self.analysis = analyze(self.model)
        self.compression = compression
        self.decision = self._decision()

    def build(self, logic: Logic, x: list[Bit]) -> Word:
        """Build the classifier with ``logic`` on the input bits ``x`` (the ``x`` port's
        bits, least significant first) and return the class-index word."""
        an = self.analysis
        b = self.mlp.input_bits
        words: list[Word | None] = [Word(tuple(x[i * b : (i + 1) * b])) for i in range(self.mlp.n_inputs)]
        reads = _bits_read(an)
        rule = self.decision
        if rule is not None and len(an.layers) > 1:  # the thresholds read the whole value
            reads[-2][rule.source] = set(range(an.inputs_of(len(an.layers) - 1)[rule.source].width))
        for k in range(len(an.layers) - (rule is not None)):
            products = self._products(logic, k, words)
            words = [
                Word.constant(n.constant) if n.constant is not None
                else neuron_output(logic, n, products[n.index], r, self.compression) if n.needs_logic
                else None
                for n, r in zip(an.layers[k], reads[k])
            ]
        if rule is not None:
            return threshold_index(logic, words[rule.source], rule, index_bits(self.mlp.n_outputs))
        return argmax(logic, [w.shift_right(self.mlp.argmax_drop_bits) for w in words])

    def _decision(self) -> ThresholdRule | None:
        """The output layer as thresholds on its only input, when that is estimated
        cheaper than its bit heaps and argmax: a threshold costs a comparator against
        a constant (about two gates per bit) and a multiplexer of the index (three
        NANDs per bit), a heap bit about a full adder (nine NANDs)."""
        rule = threshold_rule(self.analysis)
        if rule is None:
            return None
        k = len(self.analysis.layers) - 1
        h = self.analysis.inputs_of(k)[rule.source]
        heap_bits = sum(len(csd(t.weight)) * h.width for n in self.analysis.layers[k] if n.needs_logic for t in n.terms)
        threshold_cost = len(rule.thresholds) * (2 * h.width + 3 * index_bits(self.mlp.n_outputs))
        return rule if threshold_cost <= 9 * heap_bits else None

    def _products(self, logic: Logic, k: int, words: list[Word | None]) -> dict[int, list[Product]]:
        """The constant multiplications of every computed neuron of layer ``k`` (reading
        ``words``), through a shared multiple of an input wherever one saves heap bits."""
        neurons = [n for n in self.analysis.layers[k] if n.needs_logic]
        inputs = self.analysis.inputs_of(k)
        shared: dict[int, tuple[int, Word]] = {}
        if self.share_multiples:
            for i, h in enumerate(inputs):
                weights = [t.weight for n in neurons for t in n.terms if t.source == i and t.mask is None]
                f = choose_fundamental(weights, h) if len(weights) > 1 else None
                if f is not None:
                    shared[i] = f, multiple_word(logic, words[i], h, f, self.compression)
        products: dict[int, list[Product]] = {}
        for n in neurons:
            products[n.index] = []
            for t in n.terms:
                if t.mask is None and t.source in shared:
                    f, word = shared[t.source]
                    a, c = split_factor(t.weight, f, inputs[t.source].width, word.width)
                    products[n.index] += [(words[t.source], a, None), (word, c, None)]
                else:
                    products[n.index].append((words[t.source], t.weight, t.mask))
        return products

    def simulate(self, X) -> np.ndarray:
        """The class index the generated gates compute for each row of ``X`` (an input
        matrix as :meth:`IntMLP.predict` takes), by gate-level evaluation of the network
        :meth:`build` makes: bit-exact with the emitted Verilog, no synthesis needed."""
        X = self.mlp.check_inputs(X)
        logic = Logic()
        x = [Signal(name=f"x{k}") for k in range(self.mlp.n_inputs * self.mlp.input_bits)]
        index = self.build(logic, x)
        b = self.mlp.input_bits
        packed = [_pack_bits(X[:, k // b] >> (k % b) & 1) for k in range(len(x))]
        levels = logic.evaluate(list(zip(x, packed)), index.bits, len(X))
        return sum(_unpack_bits(v, len(X)) << k for k, v in enumerate(levels))


def _pack_bits(column: np.ndarray) -> int:
    """A 0/1 vector as one integer, element ``v`` in bit ``v``."""
    return int.from_bytes(np.packbits(column.astype(bool), bitorder="little").tobytes(), "little")


def _unpack_bits(value: int, n: int) -> np.ndarray:
    """Inverse of :func:`_pack_bits` for ``n`` elements (int64 0/1)."""
    raw = np.frombuffer(value.to_bytes((n + 7) // 8, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:n].astype(np.int64)


def _bits_read(an: RangeAnalysis) -> list[list[set[int]]]:
    """Per layer and neuron, the output bits that the next layer (or the argmax) reads."""
    read: list[list[set[int]]] = []
    for k, neurons in enumerate(an.layers):
        if k == len(an.layers) - 1:
            drop = an.mlp.argmax_drop_bits
            read.append([set(range(min(drop, n.out.width - n.out.signed), n.out.width)) for n in neurons])
            continue
        layer_read: list[set[int]] = [set() for _ in neurons]
        for consumer in an.layers[k + 1]:
            if not consumer.needs_logic:
                continue
            for t in consumer.terms:
                width, signed = neurons[t.source].out.width, neurons[t.source].out.signed
                if t.mask is None:
                    layer_read[t.source].update(range(width))
                else:
                    layer_read[t.source].update(b for b in range(width - signed) if t.mask >> b & 1)
                    if signed and t.mask >> (width - 1):
                        layer_read[t.source].add(width - 1)
        read.append(layer_read)
    return read


