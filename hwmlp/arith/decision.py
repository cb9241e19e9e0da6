"""Decision by thresholds: when the class depends on a single value.

If every computed neuron of the output layer reads the same one input ``h`` (a
hidden neuron, or a feature of a one-layer model; the other output neurons are
constants), the predicted class is a function of ``h`` alone. :func:`threshold_rule`
evaluates it for every value ``h`` can take (its range) and describes it as
thresholds: class ``classes[0]`` below ``thresholds[0]``, ``classes[k]`` from
``thresholds[k-1]`` on. :func:`threshold_index` builds that with one comparator
against a constant per threshold, which replaces the output layer's bit heaps and
the argmax comparator tree when the classes form few runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ranges import RangeAnalysis
from .compare import less_than, mux_words
from .logic import Logic
from .word import Word

#: Largest range of ``h`` that :func:`threshold_rule` enumerates.
MAX_VALUES = 1 << 20


@dataclass(frozen=True)
class ThresholdRule:
    """The class as a step function of input ``source`` of the output layer:
    ``classes[k]`` for ``thresholds[k-1] <= h < thresholds[k]`` (open-ended first and
    last runs; ``len(classes) == len(thresholds) + 1``)."""

    source: int
    thresholds: tuple[int, ...]
    classes: tuple[int, ...]


def threshold_rule(an: RangeAnalysis) -> ThresholdRule | None:
    """The output layer of ``an`` as a :class:`ThresholdRule`, or None when its
    computed neurons read more (or less) than one input, or the input's range has
    more than :data:`MAX_VALUES` values."""
    neurons = an.layers[-1]
    sources = {t.source for n in neurons if n.needs_logic for t in n.terms}
    if len(sources) != 1:
        return None
    (source,) = sources
    h = an.inputs_of(len(an.layers) - 1)[source]
    if h.hi - h.lo + 1 > MAX_VALUES:
        return None
    values = np.arange(h.lo, h.hi + 1, dtype=np.int64)
    outputs = np.empty((len(values), len(neurons)), dtype=np.int64)
    for n in neurons:
        if not n.needs_logic:
            outputs[:, n.index] = n.constant
            continue
        s = np.full(len(values), n.offset, dtype=np.int64)
        for t in n.terms:
            s += t.weight * (values if t.mask is None else values & t.mask)
        outputs[:, n.index] = n.activation.apply(s)
    classes = np.argmax(outputs >> an.mlp.argmax_drop_bits, axis=1)
    steps = np.flatnonzero(classes[1:] != classes[:-1]) + 1
    return ThresholdRule(
        source,
        tuple(int(values[k]) for k in steps),
        (int(classes[0]), *(int(classes[k]) for k in steps)),
    )


def threshold_index(logic: Logic, h: Word, rule: ThresholdRule, index_bits: int) -> Word:
    """The class index of ``rule`` for the value ``h``: the class of the highest
    threshold ``h`` reaches, as a chain of multiplexers selected by ``h >= threshold``."""
    index = Word.constant(rule.classes[0]).extended(index_bits, False)
    for t, c in zip(rule.thresholds, rule.classes[1:]):
        reached = logic.not_(less_than(logic, h, Word.constant(t)))
        index = mux_words(logic, reached, Word.constant(c).extended(index_bits, False), index)
    return index
