"""Comparators and the argmax of a list of words."""

from __future__ import annotations

from .logic import Bit, Logic
from .word import Word, common_format


def less_than(logic: Logic, a: Word, b: Word) -> Bit:
    """``a < b`` for two words (signed or not, any widths): the borrow of ``a - b``,
    i.e. the inverted carry out of ``a + NOT b + 1``, one carry cell per bit."""
    n, signed = common_format(a, b)
    carry: Bit = 1
    for k in range(n):
        ak, bk = a.bit(k), b.bit(k)
        if signed and k == n - 1:  # offset both by 2**(n-1): signed order becomes unsigned order
            ak, bk = logic.not_(ak), logic.not_(bk)
        carry = logic.carry(ak, logic.not_(bk), carry)
    return logic.not_(carry)


def index_bits(n_values: int) -> int:
    """Width of an index into ``n_values`` values: ``max(1, ceil(log2 n_values))``."""
    return max(1, (n_values - 1).bit_length())


def argmax(logic: Logic, values: list[Word]) -> Word:
    """Index (unsigned, :func:`index_bits` wide) of the first maximum of ``values``.

    A tree of comparators: at each node the right (higher-index) candidate wins only
    when strictly greater, so ties go to the lowest index; a node forwards the
    winner's index and value (the root forwards the index only).
    """
    width = index_bits(len(values))
    nodes = [(Word.constant(k).extended(width, False), v) for k, v in enumerate(values)]
    while len(nodes) > 1:
        nxt = []
        for p in range(0, len(nodes) - 1, 2):
            (li, lv), (ri, rv) = nodes[p], nodes[p + 1]
            right = less_than(logic, lv, rv)
            index = mux_words(logic, right, ri, li)
            nxt.append((index, mux_words(logic, right, rv, lv) if len(nodes) > 2 else None))
        if len(nodes) % 2:
            nxt.append(nodes[-1])
        nodes = nxt
    return nodes[0][0]


def mux_words(logic: Logic, sel: Bit, if1: Word, if0: Word) -> Word:
    """``if1`` when ``sel`` else ``if0``, bit by bit, in their common format."""
    n, signed = common_format(if1, if0)
    a, b = if1.extended(n, signed), if0.extended(n, signed)
    return Word(tuple(logic.mux(sel, x, y) for x, y in zip(a.bits, b.bits)), signed)
