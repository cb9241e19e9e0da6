"""Multi-bit integers made of :data:`~hwmlp.arith.logic.Bit` s."""

from __future__ import annotations

from dataclasses import dataclass

from .logic import Bit


@dataclass(frozen=True)
class Word:
    """An integer given by its bits, least significant first: unsigned, or two's
    complement when ``signed`` (the last bit is then the sign). Bits may be constants."""

    bits: tuple[Bit, ...]
    signed: bool = False

    @classmethod
    def constant(cls, value: int) -> "Word":
        """The shortest word holding ``value`` (signed only when negative)."""
        if value < 0:
            n = (-value - 1).bit_length() + 1
            return cls(tuple(value >> k & 1 for k in range(n)), True)
        return cls(tuple(value >> k & 1 for k in range(max(1, value.bit_length()))), False)

    @property
    def width(self) -> int:
        return len(self.bits)

    def bit(self, k: int) -> Bit:
        """Bit ``k`` of the infinitely sign- (or zero-) extended value."""
        if k < self.width:
            return self.bits[k]
        return self.bits[-1] if self.signed else 0

    def weighted_bits(self, mask: int | None = None) -> list[tuple[Bit, int]]:
        """``(bit, weight)`` pairs with ``sum(weight * bit)`` equal to the value, or to
        ``value & mask`` (two's complement, ``mask >= 0``) when a mask is given; constant
        zero bits are left out."""
        if mask is None:
            pairs = [(b, 1 << k) for k, b in enumerate(self.bits)]
            if self.signed:
                pairs[-1] = (self.bits[-1], -(1 << (self.width - 1)))
        else:
            top = self.width - 1 if self.signed else self.width
            pairs = [(self.bits[k], 1 << k) for k in range(min(top, mask.bit_length())) if mask >> k & 1]
            if self.signed and mask >> top:
                pairs.append((self.bits[-1], (mask >> top) << top))
        return [(b, w) for b, w in pairs if not (isinstance(b, int) and b == 0)]

    def shift_right(self, n: int) -> "Word":
        """The value divided by ``2**n``, rounded towards minus infinity."""
        if n >= self.width:
            return Word((self.bits[-1],) if self.signed else (0,), self.signed)
        return Word(self.bits[n:], self.signed)

    def extended(self, width: int, signed: bool) -> "Word":
        """The same value on ``width`` bits (signed or not); the value must fit."""
        return Word(tuple(self.bit(k) for k in range(width)), signed)


def common_format(a: Word, b: Word) -> tuple[int, bool]:
    """``(width, signed)`` of the narrowest format holding every value of ``a`` and ``b``."""
    signed = a.signed or b.signed
    return max(w.width + (signed and not w.signed) for w in (a, b)), signed
