"""A neuron as logic: one bit heap for its sum, then its activation from the sum's bits.

The sum of a neuron (:class:`~hwmlp.ranges.NeuronRange`) is ``offset + sum of
weight * (input & mask)``; every input bit times every canonical signed digit of its
factor goes into one :class:`~hwmlp.arith.bitheap.BitHeap` as wide as the sum's range
needs (two's complement when it can be negative, so the heap works modulo that width
and never sign-extends). The activation then reads the sum's bits:

* ``none``: the sum itself;
* ``relu``: every kept bit ANDed with the inverted sign (no logic when the sum is
  never negative);
* ``qrelu [msb:lsb]``: bits ``lsb..msb``, forced to ones when any higher bit is set
  (only when the range says the sum can exceed the slice), zero when negative.

Only the output bits that a reader needs are computed, and only the sum bits those
need; the heap's other columns produce carries only.
"""

from __future__ import annotations

from typing import Collection, Iterable

from ..ranges import NeuronRange
from .bitheap import BitHeap
from .logic import Bit, Logic
from .word import Word


#: A constant multiplication ``factor * (word & mask)`` (``factor * word`` when ``mask`` is None).
Product = tuple[Word, int, "int | None"]


def neuron_output(
    logic: Logic, n: NeuronRange, products: Iterable[Product], read: Collection[int], compression: str = "ripple"
) -> Word:
    """The output word of neuron ``n`` (``n.out.width`` bits; bits outside ``read`` are
    None), whose sum is ``n.offset`` plus the ``products``."""
    heap = BitHeap(logic, n.sum.width)
    heap.add_constant(n.offset)
    for word, factor, mask in products:
        for bit, weight in word.weighted_bits(mask):
            heap.add_multiple(bit, factor * weight)
    return activate(logic, n, heap.sum_bits(sum_bits_needed(n, read), compression))


def sum_bits_needed(n: NeuronRange, read: Collection[int]) -> set[int]:
    """Bits of the sum that the activation needs to produce the output bits ``read``."""
    act, w = n.activation, n.sum.width
    sign = {w - 1} if n.sum.signed else set()
    if act.kind == "none":
        return set(read)
    if act.kind == "relu":
        return set(read) | sign
    saturation = set(range(act.msb + 1, w - n.sum.signed)) if n.sum.hi >> (act.msb + 1) else set()
    return {act.lsb + i for i in read if act.lsb + i < w - n.sum.signed} | saturation | sign


def activate(logic: Logic, n: NeuronRange, s: list[Bit | None]) -> Word:
    """The activation of neuron ``n`` applied to its sum bits ``s`` (two's complement
    when ``n.sum`` is signed); output bits whose sum bits are None stay None."""
    act, width = n.activation, n.out.width
    if act.kind == "none":
        return Word(tuple(s), n.sum.signed)
    keep = logic.not_(s[-1]) if n.sum.signed else 1
    if act.kind == "relu":
        return Word(tuple(None if v is None else logic.and_(v, keep) for v in s[:width]))
    # out.width covers bits lsb.. of the sum below its sign: up to msb when it can saturate
    saturated: Bit = 0
    if n.sum.hi >> (act.msb + 1):
        for v in s[act.msb + 1 : len(s) - n.sum.signed]:
            saturated = logic.or_(saturated, v)
    slice_ = s[act.lsb : act.lsb + width]
    return Word(tuple(None if v is None else logic.and_(logic.or_(v, saturated), keep) for v in slice_))
