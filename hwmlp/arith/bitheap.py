"""Bit heaps: a whole multi-operand sum as weighted bits, compressed by counters.

A :class:`BitHeap` holds the sum ``constant + sum_c 2**c * (bits of column c)`` modulo
``2**width``. A neuron puts every partial product of every constant multiplication
in one heap: input bit ``x_b`` times each canonical signed digit ``±2**k`` of its
factor lands in column ``b + k`` (:meth:`BitHeap.add_multiple`), and the bias is
one more constant. Signed terms need no sign extension: a negative bit
``-x * 2**c`` is stored as ``(NOT x) * 2**c - 2**c`` and all constants are folded
into one constant row (modulo ``2**width``, so nothing reaches beyond the heap).

:meth:`BitHeap.sum_bits` compresses the heap with full and half adders
(:class:`~hwmlp.arith.logic.Logic`), either column by column from the least
significant one, each column reduced to a single bit and its carries passed on
(``"ripple"``: the fewest adders), or by a Dadda tree down to two rows followed by
a ripple-carry adder (``"dadda"``: logarithmic depth). Only the requested sum bits
are produced; the other columns compute their carries only.
"""

from __future__ import annotations

from collections import deque
from typing import Collection

from .csd import csd
from .logic import Bit, Logic

STRATEGIES = ("ripple", "dadda")


class BitHeap:
    """A sum of weighted bits modulo ``2**width``, built with ``logic``."""

    def __init__(self, logic: Logic, width: int):
        if width < 1:
            raise ValueError(f"a bit heap needs a positive width, got {width}")
        self.logic = logic
        self.width = width
        self.columns: list[list[Bit]] = [[] for _ in range(width)]
        self.constant = 0

    @property
    def n_bits(self) -> int:
        """Variable (non-constant) bits in the heap."""
        return sum(len(c) for c in self.columns)

    def add_constant(self, value: int) -> None:
        self.constant = (self.constant + value) % (1 << self.width)

    def add_bit(self, bit: Bit, column: int, negative: bool = False) -> None:
        """Add ``bit * 2**column``, or subtract it when ``negative``."""
        if column >= self.width:
            return
        if isinstance(bit, int):
            self.add_constant((-bit if negative else bit) << column)
        elif negative:
            self.columns[column].append(self.logic.not_(bit))
            self.add_constant(-(1 << column))
        else:
            self.columns[column].append(bit)

    def add_multiple(self, bit: Bit, factor: int) -> None:
        """Add ``factor * bit``: one heap bit per canonical signed digit of ``factor``."""
        for d in csd(factor):
            self.add_bit(bit, d.shift, d.sign < 0)

    def sum_bits(self, needed: Collection[int] | None = None, strategy: str = "ripple") -> list[Bit | None]:
        """Compress the heap and return its value's bits (``width`` of them, least
        significant first); bits outside ``needed`` (all when None) are None and
        their columns only compute carries. The heap is consumed."""
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown compression strategy {strategy!r}: use one of {STRATEGIES}")
        needed = set(range(self.width)) if needed is None else set(needed)
        # constant bits go first in their column: adders fed with them fold to less logic
        columns = [([1] if self.constant >> c & 1 else []) + col for c, col in enumerate(self.columns)]
        self.columns = [[] for _ in range(self.width)]
        self.constant = 0
        if strategy == "dadda":
            columns = self._dadda(columns)
        return self._ripple(columns, needed)

    def _ripple(self, columns: list[list[Bit]], needed: set[int]) -> list[Bit | None]:
        """Reduce each column to one bit with full adders (and at most one half adder),
        least significant column first, carries into the next column."""
        lg = self.logic
        out: list[Bit | None] = []
        for c in range(self.width):
            q = deque(columns[c])
            top = c == self.width - 1
            while len(q) >= 2:
                last = len(q) <= 3
                a, b = q.popleft(), q.popleft()
                d = q.popleft() if q else 0
                if top:  # carries out of the heap are dropped (modulo 2**width)
                    q.append(lg.parity([a, b, d]))
                elif last and c not in needed:
                    columns[c + 1].append(lg.carry(a, b, d))
                    q.append(None)
                    break
                else:
                    s, carry = lg.full_adder(a, b, d)
                    q.append(s)
                    columns[c + 1].append(carry)
            bit = q[0] if q else 0
            out.append(bit if c in needed else None)
        return out

    def _dadda(self, columns: list[list[Bit]]) -> list[list[Bit]]:
        """Dadda's reduction: full and half adders, stage by stage, down to two rows."""
        lg = self.logic
        heights = [2]
        while heights[-1] < max(len(c) for c in columns):
            heights.append(heights[-1] * 3 // 2)
        for target in reversed(heights[:-1]):
            nxt: list[list[Bit]] = [[] for _ in range(self.width)]
            for c in range(self.width):
                q = deque(columns[c])
                while len(q) >= 2 and len(q) + len(nxt[c]) > target:
                    if len(q) + len(nxt[c]) - target >= 2 and len(q) >= 3:
                        s, carry = lg.full_adder(q.popleft(), q.popleft(), q.popleft())
                    else:
                        s, carry = lg.full_adder(q.popleft(), q.popleft(), 0)
                    nxt[c].append(s)
                    if c + 1 < self.width:
                        nxt[c + 1].append(carry)
                nxt[c].extend(q)
            columns = nxt
        return columns
