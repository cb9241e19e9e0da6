"""Multiple constant multiplication: one shared multiple of an input for a whole layer.

The neurons of a layer multiply the same input ``h`` by different constants ``w_j``.
Computing ``F = f * h`` once (its own small bit heap) for an odd *fundamental* ``f``
and writing each ``w_j = a_j + c_j * f`` lets every neuron take the partial
products of ``a_j * h`` and ``c_j * F`` instead of those of ``w_j * h``: fewer heap
bits when the weights share ``f``'s pattern, e.g. ``w = 45 = 3 * 15`` is four
signed digits of ``h`` but two of ``3h``.

Costs are counted in heap bits (each costs about one full adder): a term with
factor ``a`` on a ``n``-bit word costs ``digits(a) * n`` bits, and ``F`` costs its
own heap's bits.
"""

from __future__ import annotations

from ..ranges import Interval
from .bitheap import BitHeap
from .csd import csd
from .logic import Logic
from .word import Word

#: Odd fundamentals tried, smallest first.
FUNDAMENTALS = tuple(range(3, 64, 2))


def heap_bits(factor: int, width: int) -> int:
    """Heap bits of ``factor * h`` for a ``width``-bit ``h``: one row per signed digit."""
    return len(csd(factor)) * width


def split_factor(w: int, f: int, width: int, shared_width: int) -> tuple[int, int]:
    """``(a, c)`` with ``a + c * f == w`` and the fewest heap bits
    ``heap_bits(a, width) + heap_bits(c, shared_width)`` (``c = 0`` on ties)."""
    span = abs(w) // f + 2
    candidates = sorted(range(-span, span + 1), key=abs)
    c = min(candidates, key=lambda c: heap_bits(w - c * f, width) + heap_bits(c, shared_width))
    return w - c * f, c


def shared_multiple(h: Interval, f: int) -> Interval:
    """Range of ``f * h``."""
    return Interval(f * h.lo, f * h.hi)


def choose_fundamental(weights: list[int], h: Interval) -> int | None:
    """The fundamental whose shared multiple of ``h`` saves the most heap bits over the
    canonical signed digits of ``weights`` (the factors of ``h`` in one layer), its own
    heap included; None when none saves any."""
    n = h.width
    plain = sum(heap_bits(w, n) for w in weights)
    best, best_saving = None, 0
    for f in FUNDAMENTALS:
        shared = shared_multiple(h, f).width
        cost = heap_bits(f, n) + sum(sum_bits(split_factor(w, f, n, shared), n, shared) for w in weights)
        if plain - cost > best_saving:
            best, best_saving = f, plain - cost
    return best


def sum_bits(split: tuple[int, int], width: int, shared_width: int) -> int:
    a, c = split
    return heap_bits(a, width) + heap_bits(c, shared_width)


def multiple_word(logic: Logic, h: Word, h_range: Interval, f: int, compression: str = "ripple") -> Word:
    """The word ``f * h`` (``h`` ranging over ``h_range``), from its own bit heap."""
    product = shared_multiple(h_range, f)
    heap = BitHeap(logic, product.width)
    for bit, weight in h.weighted_bits():
        heap.add_multiple(bit, f * weight)
    return Word(tuple(heap.sum_bits(None, compression)), product.signed)
