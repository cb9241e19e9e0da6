"""Signed-digit arithmetic and hardware-friendly weight sets."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hwmlp.errors import HwmlpError
from hwmlp.arith.csd import csd
from hwmlp.search.approx import WeightSet, csd_digit_count, csd_masks


def fewest_signed_digits(w: int, width: int = 10) -> int:
    """Brute force: fewest nonzero digits in {-1, 0, 1} over exponents 0..width-1."""
    for k in range(width + 1):
        for exps in itertools.combinations(range(width), k):
            for signs in itertools.product((-1, 1), repeat=k):
                if sum(s << e for s, e in zip(signs, exps)) == w:
                    return k
    raise AssertionError(w)


@given(st.integers(-(2**60), 2**60))
def test_csd_masks_are_the_canonical_signed_digits(w):
    pos, neg = (int(m) for m in csd_masks(w))
    assert pos - neg == w
    assert pos & neg == 0
    assert (pos | neg) & ((pos | neg) >> 1) == 0  # non-adjacent form
    assert [(d.shift, d.sign) for d in csd(w)] == [(e, 1 if pos >> e & 1 else -1)
                                                   for e in range((pos | neg).bit_length()) if (pos | neg) >> e & 1]
    assert csd_digit_count(w) == bin(pos | neg).count("1")


def test_csd_uses_the_fewest_signed_digits():
    values = np.arange(-200, 201)
    brute = [fewest_signed_digits(int(w)) for w in values]
    np.testing.assert_array_equal(csd_digit_count(values), brute)
    np.testing.assert_array_equal(csd_masks([7, -12]), [[8, 4], [1, 16]])


def test_named_weight_sets():
    pow2 = WeightSet.powers_of_two(3)
    assert sorted(w for w in range(-20, 21) if w in pow2) == [-8, -4, -2, -1, 0, 1, 2, 4, 8]
    two = WeightSet.signed_digits(2, 3)
    assert 7 in two and 6 in two and -7 in two and 11 not in two and 9 not in two
    fixed = WeightSet.fixed_point(4)
    assert [w for w in range(-20, 21) if w in fixed] == list(range(-7, 8))


@given(st.integers(-300, 300), st.sampled_from(
    [WeightSet.powers_of_two(5), WeightSet.signed_digits(2, 6), WeightSet.fixed_point(6), WeightSet(100, 3)]))
def test_nearest_is_the_closest_member(w, ws):
    members = [v for v in range(-ws.max_magnitude, ws.max_magnitude + 1) if v in ws]
    best = min(abs(v - w) for v in members)
    got = ws.nearest(w)
    assert got in ws
    assert abs(got - w) == best
    assert abs(got) == min(abs(v) for v in members if abs(v - w) == best)  # ties: smaller magnitude


def test_project_and_contains_are_elementwise():
    ws = WeightSet.powers_of_two(4)
    W = np.array([[3, -5, 100], [0, -17, 6]])
    P = ws.project(W)
    np.testing.assert_array_equal(P, [[2, -4, 16], [0, -16, 4]])
    assert ws.contains(P).all()
    np.testing.assert_array_equal(ws.contains(W), [[False, False, False], [True, False, False]])
    assert WeightSet.from_dict(ws.to_dict()) == ws


def test_impossible_weight_sets_are_refused():
    with pytest.raises(HwmlpError):
        WeightSet(0)
    with pytest.raises(HwmlpError):
        WeightSet(10, 0)
