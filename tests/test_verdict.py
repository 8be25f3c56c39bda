"""The exact McNemar test of `pwd_git.evaluate.verdict`, against exact rational arithmetic."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise
from math import comb

import pytest

from pwd_git.evaluate.verdict import mcnemar_p


def exact_p(broke: int, fixed: int) -> Fraction:
    """P(X >= broke), X ~ Binomial(broke + fixed, 1/2), as an exact fraction (the textbook sum)."""
    n = broke + fixed
    return Fraction(sum(comb(n, k) for k in range(broke, n + 1)), 2**n)


def test_every_small_table_matches_the_exact_sum():
    for n in range(61):
        for broke in range(n + 1):
            assert mcnemar_p(broke, n - broke) == pytest.approx(float(exact_p(broke, n - broke)), rel=1e-12, abs=0), \
                (broke, n - broke)


@pytest.mark.parametrize("n", [200, 1001, 3000])
def test_hundreds_to_thousands_of_pairs_match_the_exact_sum(n):
    for broke in sorted({0, 1, n // 3, n // 2 - 20, n // 2, n // 2 + 1, n // 2 + 30, (2 * n) // 3, n - 1, n}):
        assert mcnemar_p(broke, n - broke) == pytest.approx(float(exact_p(broke, n - broke)), rel=1e-10, abs=0), broke


def test_no_discordant_pair_or_none_broken_is_no_evidence():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(0, 1) == 1.0
    assert mcnemar_p(0, 20_000) == 1.0


@pytest.mark.parametrize("broke", [1, 6, 100, 1000, 1074, 5000])
def test_all_broken_is_one_half_to_the_power_n(broke):
    """Down to the smallest double and past it (underflow to 0.0, as the exact value rounds)."""
    assert mcnemar_p(broke, 0) == pytest.approx(0.5**broke, rel=1e-12, abs=0)


@pytest.mark.parametrize("half", [10_000, 100_000])
def test_even_split_of_a_huge_table_is_one_half_plus_half_the_middle_term(half):
    """P(X >= n/2) = (1 + P(X = n/2)) / 2: exact with one big binomial, even for huge n."""
    n = 2 * half
    expected = (1 + Fraction(comb(n, half), 2**n)) / 2
    assert mcnemar_p(half, half) == pytest.approx(float(expected), rel=1e-9, abs=0)


@pytest.mark.parametrize(("broke", "fixed"), [(1, 0), (3, 5), (30, 10), (10_100, 9_900), (9_000, 11_000),
                                              (600_000, 400_000)])
def test_upper_and_lower_tails_add_up_to_one(broke, fixed):
    """P(X >= b) + P(X >= n - b + 1) = 1: the two branches (direct tail, complement) agree."""
    assert mcnemar_p(broke, fixed) + mcnemar_p(fixed + 1, broke - 1) == pytest.approx(1.0, rel=1e-12)


def test_more_broken_of_the_same_pairs_is_never_less_significant():
    n = 20_000
    ps = [mcnemar_p(b, n - b) for b in range(9_800, 10_600, 7)]
    assert all(a >= b for a, b in pairwise(ps))
    assert ps[0] > 0.99 and ps[-1] < 1e-10
