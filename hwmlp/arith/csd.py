"""Signed-digit recoding of integer constants (canonical signed digits, CSD).

A constant multiplication ``c * x`` becomes a sum of shifted copies of ``x``, one per
nonzero digit of ``c`` written in the digits {-1, 0, +1}. The canonical signed-digit
form (non-adjacent form) has the fewest nonzero digits of all such writings, about a
third of the bit length on average against a half for plain binary.
"""

from __future__ import annotations

from typing import NamedTuple


class SignedDigit(NamedTuple):
    """The digit ``sign * 2**shift`` (``sign`` is +1 or -1)."""

    shift: int
    sign: int

    @property
    def value(self) -> int:
        return self.sign << self.shift


def csd(c: int) -> tuple[SignedDigit, ...]:
    """Canonical signed digits of ``c``, least significant first; ``sum(d.value) == c``.

    No two nonzero digits are adjacent, so their number is minimal. ``csd(0) == ()``.
    """
    digits = []
    shift = 0
    while c:
        if c & 1:
            sign = 2 - (c & 3)  # +1 when c = 1 (mod 4), -1 when c = 3 (mod 4)
            digits.append(SignedDigit(shift, sign))
            c -= sign
        c >>= 1
        shift += 1
    return tuple(digits)
