"""Hardware-friendly weight sets and vectorized signed-digit arithmetic.

In a bespoke circuit a constant multiplication ``w * x`` is a shift-add of ``x``:
one shifted copy of ``x`` per nonzero digit of ``w`` written in canonical
signed-digit form (CSD, also called the non-adjacent form: digits in {-1, 0, +1},
no two adjacent digits nonzero), the signed-digit representation with the fewest
nonzero digits. A signed power of two is a single digit: a shift, no gates. Zero
removes the connection.

A :class:`WeightSet` is the set of integer weights a search may use:

* :meth:`WeightSet.powers_of_two` -- zero and ``±2**e``;
* :meth:`WeightSet.signed_digits` -- sums of at most ``k`` signed powers of two;
* :meth:`WeightSet.fixed_point` -- every ``bits``-bit signed integer (the exact reference).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwmlpError


def csd_masks(w) -> tuple[np.ndarray, np.ndarray]:
    """Canonical signed digits of integers ``w``, elementwise, as two bit masks (the
    vectorized form of :func:`hwmlp.arith.csd.csd`, which gives one integer's digits).

    Returns ``(pos, neg)``, non-negative int64 arrays with ``w == pos - neg``: bit ``e``
    of ``pos`` (``neg``) is set when the CSD digit of weight ``2**e`` is +1 (-1).
    Exact for ``|w| < 2**61``.
    """
    w = np.asarray(w, dtype=np.int64)
    a = np.abs(w)
    half = a >> 1
    three_halves = a + half
    changed = half ^ three_halves
    plus, minus = three_halves & changed, half & changed
    return np.where(w >= 0, plus, minus), np.where(w >= 0, minus, plus)


def csd_digit_count(w) -> np.ndarray:
    """Number of nonzero CSD digits of each integer (0 for zero, 1 for ``±2**e``)."""
    pos, neg = csd_masks(w)
    return np.bitwise_count(pos | neg).astype(np.int64)


@dataclass(frozen=True)
class WeightSet:
    """Integers ``w`` with ``|w| <= max_magnitude`` and at most ``max_digits`` nonzero
    CSD digits (``max_digits=None``: no digit limit, i.e. plain fixed point)."""

    max_magnitude: int
    max_digits: int | None = None

    def __post_init__(self):
        if not isinstance(self.max_magnitude, int) or not 1 <= self.max_magnitude < 2**40:
            raise HwmlpError(f"impossible weight magnitude bound {self.max_magnitude!r}: use 1..2**40-1")
        if self.max_digits is not None and (not isinstance(self.max_digits, int) or self.max_digits < 1):
            raise HwmlpError(f"impossible digit limit {self.max_digits!r}: use a positive integer or None")

    @classmethod
    def powers_of_two(cls, max_exponent: int) -> "WeightSet":
        """Zero and ``±2**e`` for ``0 <= e <= max_exponent`` (multipliers become shifts)."""
        return cls(1 << max_exponent, 1)

    @classmethod
    def signed_digits(cls, k: int, max_exponent: int) -> "WeightSet":
        """Sums of at most ``k`` signed powers of two, magnitudes up to ``2**max_exponent``."""
        return cls(1 << max_exponent, k)

    @classmethod
    def fixed_point(cls, bits: int) -> "WeightSet":
        """Every ``bits``-bit signed integer in ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]``."""
        return cls((1 << (bits - 1)) - 1, None)

    @property
    def max_exponent(self) -> int:
        """A bound on the exponent of any member's CSD digits (``max_magnitude``'s bit length)."""
        return self.max_magnitude.bit_length()

    def __contains__(self, w: int) -> bool:
        """Membership of one integer (pure Python: the mutation operators' hot path)."""
        a = abs(int(w))
        half = a >> 1
        return a <= self.max_magnitude and (
            self.max_digits is None or (half ^ (a + half)).bit_count() <= self.max_digits
        )

    def contains(self, w) -> np.ndarray:
        """Elementwise membership of integers ``w``."""
        w = np.asarray(w, dtype=np.int64)
        inside = np.abs(w) <= self.max_magnitude
        if self.max_digits is not None:
            inside &= csd_digit_count(w) <= self.max_digits
        return inside

    def nearest(self, w: int) -> int:
        """The member closest to ``w`` (ties go to the smaller magnitude)."""
        w = int(w)
        sign, a = (1 if w >= 0 else -1), min(abs(w), self.max_magnitude)
        for d in range(a + 1):
            for cand in (a - d, a + d):
                if cand in self:
                    return sign * cand
        raise AssertionError("unreachable: zero is in every weight set")

    def project(self, W) -> np.ndarray:
        """Elementwise :meth:`nearest` of an integer array (same shape, int64)."""
        W = np.asarray(W, dtype=np.int64)
        values, inverse = np.unique(W, return_inverse=True)
        return np.array([self.nearest(v) for v in values], dtype=np.int64)[inverse].reshape(W.shape)

    def to_dict(self) -> dict:
        return {"max_magnitude": self.max_magnitude, "max_digits": self.max_digits}

    @classmethod
    def from_dict(cls, d: dict) -> "WeightSet":
        return cls(int(d["max_magnitude"]), d.get("max_digits"))
