"""Don't-care partial-product bits: bits whose removal never changes a prediction.

A classifier circuit only has to produce the right class index, not the neuron sums.
When a model has few input bits (at most :data:`MAX_INPUT_BITS` in total), every input
vector can be evaluated, and :func:`drop_dont_care_bits` clears partial-product mask
bits one at a time (one bit of one input of one connection: ``w * (h & m)`` loses
bit ``b`` of ``m``), keeping a removal only when the predictions on **every**
possible input vector stay those of the original model. The result is equivalent
to the original as a classifier (``predict`` agrees on the whole input domain) while
its sums differ; its circuit has smaller bit heaps, and neurons may become constant
or unused, which :mod:`hwmlp.ranges` then removes.

Candidates are tried from the output layer backwards and, within a layer, from the
least significant input bits up (low bits move the sums least), each check
re-evaluating only what the bit changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .intmlp import IntLayer, IntMLP
from .ranges import RangeAnalysis, analyze, input_vectors

#: Models with at most this many input bits in total are searched for don't-care bits.
MAX_INPUT_BITS = 16


@dataclass
class DontCareReport:
    """What :func:`drop_dont_care_bits` did: ``dropped`` lists ``(layer, neuron, input,
    bit)`` of every cleared mask bit; ``tried``: candidate bits checked; ``vectors``:
    input vectors each check covered (0 when the model has too many input bits)."""

    dropped: list[tuple[int, int, int, int]] = field(default_factory=list)
    tried: int = 0
    vectors: int = 0


def drop_dont_care_bits(mlp: IntMLP, max_input_bits: int = MAX_INPUT_BITS) -> tuple[IntMLP, DontCareReport]:
    """A model with the same predictions as ``mlp`` on every input vector and as few
    partial-product bits as this greedy search finds (see the module docstring).

    Only layers that have masks, or whose inputs are never negative, are edited (a
    mask selects bits of the two's complement value, so it cannot stand for a whole
    negative input). Returns ``mlp`` itself, unchanged, when it has more than
    ``max_input_bits`` input bits.
    """
    n_bits = mlp.n_inputs * mlp.input_bits
    if n_bits > max_input_bits:
        return mlp, DontCareReport()
    X = input_vectors(mlp)
    an = analyze(mlp)
    state = _Evaluation(mlp, X, [_editable_masks(an, k) for k in range(len(mlp.layers))])
    reference = state.predict(state.inputs[-1])
    report = DontCareReport(vectors=len(X))
    for k, j, i, b in _candidates(an, state.masks):
        report.tried += 1
        if state.try_clear(k, j, i, b, reference):
            report.dropped.append((k, j, i, b))
    layers = [
        IntLayer(layer.weights, layer.biases, layer.activation, masks)
        for layer, masks in zip(mlp.layers, state.masks)
    ]
    pruned = IntMLP(mlp.input_bits, layers, mlp.argmax_drop_bits, mlp.name, mlp.classes)
    if not np.array_equal(pruned.predict(X), reference):
        raise AssertionError("don't-care search changed a prediction")  # a bug, never the user's
    return pruned, report


def _editable_masks(an: RangeAnalysis, k: int) -> np.ndarray | None:
    """Layer ``k``'s masks as an array equivalent to the layer as it is, or None when
    the layer has no masks and an input can be negative."""
    layer = an.mlp.layers[k]
    if layer.masks is not None:
        return layer.masks.copy()
    inputs = an.inputs_of(k)
    if any(x.signed for x in inputs):
        return None
    row = np.array([(1 << x.hi.bit_length()) - 1 for x in inputs], dtype=np.int64)
    return np.tile(row, (layer.n_outputs, 1))


def _candidates(an: RangeAnalysis, masks: list[np.ndarray | None]) -> list[tuple[int, int, int, int]]:
    """``(layer, neuron, input, bit)`` of every live partial-product bit of the editable
    layers, in trial order (output layer first, low bits first)."""
    found = []
    for k in range(len(an.layers) - 1, -1, -1):
        if masks[k] is None:
            continue
        bits = [
            (b, n.index, t.source)
            for n in an.layers[k]
            if n.needs_logic
            for t in n.terms
            for b in range(int(masks[k][n.index, t.source]).bit_length())
            if masks[k][n.index, t.source] >> b & 1
        ]
        found += [(k, j, i, b) for b, j, i in sorted(bits)]
    return found


class _Evaluation:
    """Sums and outputs of every layer of ``mlp`` for the input vectors ``X`` under
    ``masks`` (None: the layer's own, unmasked), editable one mask bit at a time."""

    def __init__(self, mlp: IntMLP, X: np.ndarray, masks: list[np.ndarray | None]):
        self.mlp = mlp
        self.masks = masks
        self.inputs = [X]  # inputs[k]: what layer k reads; inputs[-1]: the output layer's values
        self.sums = []
        for k in range(len(mlp.layers)):
            s = self._layer(k).sums(self.inputs[k])
            self.sums.append(s)
            self.inputs.append(mlp.layers[k].activation.apply(s))

    def _layer(self, k: int) -> IntLayer:
        layer = self.mlp.layers[k]
        return IntLayer(layer.weights, layer.biases, layer.activation, self.masks[k])

    def predict(self, outputs: np.ndarray) -> np.ndarray:
        return np.argmax(outputs >> self.mlp.argmax_drop_bits, axis=1)

    def try_clear(self, k: int, j: int, i: int, b: int, reference: np.ndarray) -> bool:
        """Clear bit ``b`` of the mask of connection ``(j, i)`` of layer ``k`` when the
        predictions stay ``reference``; True when it was cleared."""
        layers = self.mlp.layers
        w = int(layers[k].weights[j, i])
        sums = {k: self.sums[k].copy()}
        sums[k][:, j] -= w * ((self.inputs[k][:, i] >> b & 1) << b)
        inputs = {k + 1: self.inputs[k + 1].copy()}
        inputs[k + 1][:, j] = layers[k].activation.apply(sums[k][:, j])
        for q in range(k + 1, len(layers)):
            if q == k + 1:  # only column j of this layer's input changed
                m = self.masks[q][:, j] if self.masks[q] is not None else -1
                old, new = self.inputs[q][:, j, None] & m, inputs[q][:, j, None] & m
                sums[q] = self.sums[q] + (new - old) * layers[q].weights[:, j]
            else:
                sums[q] = self._layer(q).sums(inputs[q])
            inputs[q + 1] = layers[q].activation.apply(sums[q])
        if not np.array_equal(self.predict(inputs[len(layers)]), reference):
            return False
        self.masks[k][j, i] &= ~(1 << b)
        for q, s in sums.items():
            self.sums[q] = s
        for q, h in inputs.items():
            self.inputs[q] = h
        return True
