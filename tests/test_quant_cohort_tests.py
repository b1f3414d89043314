"""Small-sample tests of a cohort study: answers worked out by hand (counting orderings, arithmetic)."""

import math

import numpy as np
import pytest

from petrecon.errors import ParameterError
from petrecon.quant.cohort_tests import (
    check_confidence,
    hodges_lehmann,
    mann_whitney,
    mann_whitney_u_counts,
    paired_comparison,
    spearman,
)


def test_spearman_at_rho_minus_one_with_four_patients_is_not_significant():
    result = spearman([1, 2, 3, 4], [40, 30, 20, 10], "x vs y")
    # of the 4! = 24 orderings only the two monotone ones reach |rho| = 1: p = 2/24 exactly (scipy's t
    # approximation says 0)
    assert result.statistic == -1.0
    assert result.p_value == pytest.approx(2 / 24, abs=1e-12)
    assert result.min_p == pytest.approx(2 / 24)
    assert "n = 4: no result can reach p < 0.05" in result.note
    assert result.ci_low is None and "interval infinite" in result.note
    assert result.n == "4" and result.method == "exact permutation"


def test_spearman_exact_p_counts_the_orderings_as_extreme():
    # y ranks (1, 3, 2, 4): sum d^2 = 2, rho = 1 - 6*2/(4*15) = 0.8. Orderings with |rho| >= 0.8 have sum d^2 <= 2
    # (identity + 3 adjacent swaps) or >= 18 (their 4 reverses): 8 of 24
    result = spearman([1, 2, 3, 4], [1, 3, 2, 4], "x vs y")
    assert result.statistic == pytest.approx(0.8)
    assert result.p_value == pytest.approx(8 / 24, abs=1e-12)


def test_spearman_fisher_interval_follows_bonett_wright():
    x = np.arange(10.0)
    y = np.array([0, 2, 1, 4, 3, 6, 5, 9, 7, 8.0])
    result = spearman(x, y, "x vs y", confidence=0.95)
    rho = result.statistic
    # Fisher z = atanh(rho), SE = sqrt((1 + rho^2 / 2) / (n - 3)), z_0.975 = 1.959964
    se = math.sqrt((1 + rho**2 / 2) / 7)
    assert result.ci_low == pytest.approx(math.tanh(math.atanh(rho) - 1.959964 * se), abs=1e-6)
    assert result.ci_high == pytest.approx(math.tanh(math.atanh(rho) + 1.959964 * se), abs=1e-6)
    assert result.method == "t approximation"  # n = 10 > 9: no enumeration


def test_spearman_says_why_it_has_no_number():
    assert spearman([1, 2], [2, 1], "x").note == "not computed: n = 2 (needs 3)"
    three = spearman([1, 2, 3], [1, 3, 2], "x")
    assert three.p_value is not None and "n <= 3: Fisher-z interval undefined" in three.note


def test_mann_whitney_null_distribution_is_the_counted_arrangements():
    # m = n = 2: the C(4, 2) = 6 arrangements give U = 0, 1, 2, 2, 3, 4
    assert mann_whitney_u_counts(2, 2).tolist() == [1, 1, 2, 1, 1]
    assert mann_whitney_u_counts(5, 5).sum() == math.comb(10, 5)


def test_hodges_lehmann_shift_of_a_shifted_sample_and_its_interval():
    a = np.array([1.0, 2, 3, 4, 5])
    shift, low, high = hodges_lehmann(a, a + 10)
    # differences are 10 + (j - i), j - i = -4..4 with multiplicities 1..5..1: median 10.
    # m = n = 5: P(U <= 2) = 4/252 <= 0.025 < P(U <= 3) = 7/252, so k = 3: [D(3), D(23)] = [7, 13]
    assert (shift, low, high) == (10.0, 7.0, 13.0)


def test_mann_whitney_separated_groups_exact_p_and_shift():
    result = mann_whitney([1, 2, 3, 4, 5], [11, 12, 13, 14, 15], "A vs B")
    # U = 0, exact two-sided p = 2 / C(10, 5) = 2/252
    assert result.statistic == 0.0 and result.p_value == pytest.approx(2 / 252)
    assert result.value == 10.0 and result.method == "exact"
    small = mann_whitney([1, 2, 3], [4, 5, 6], "A vs B")
    # 2 / C(6, 3) = 0.1: three per group can never reach 0.05; the 95 % shift interval needs k >= 1, P(U=0)=0.05
    assert small.p_value == pytest.approx(0.1) and "no result can reach p < 0.05" in small.note
    assert small.ci_low is None
    assert mann_whitney([1, 2], [3, 4, 5], "A vs B").note == "not computed: n = 2 vs 3 (needs 3)"


def test_bland_altman_limits_and_their_intervals():
    reference = np.full(5, 10.0)
    rows = paired_comparison(reference, reference + np.array([-2, -1, 0, 1, 2.0]), "B vs A",
                             tests=("bland-altman",))
    bias, lower, upper = rows
    # d = -2..2: bias 0, s^2 = 10/4 = 2.5; LoA = -+1.959964 * 1.581139 = -+3.0990;
    # SE(LoA) = sqrt(3 * 2.5 / 5) = 1.224745, t(4, 0.975) = 2.776445: half-width 3.40044
    assert bias.value == pytest.approx(0.0, abs=1e-12)
    assert bias.ci_high == pytest.approx(2.776445 * 1.581139 / math.sqrt(5), rel=1e-5)
    assert upper.value == pytest.approx(3.09900, rel=1e-5) and lower.value == pytest.approx(-3.09900, rel=1e-5)
    assert upper.ci_high - upper.value == pytest.approx(3.40044, rel=1e-5)
    assert all(r.n == "5" for r in rows)


def test_paired_percent_difference_and_wilcoxon_of_a_constant_bias():
    reference = np.array([2.0, 3, 4, 5, 6])
    other = reference * np.array([0.84, 0.85, 0.86, 0.83, 0.87])
    difference, wilcoxon = paired_comparison(reference, other, "mmr vs b64", tests=("difference", "wilcoxon"))
    # mean of -16, -15, -14, -17, -13 %: -15 %
    assert difference.value == pytest.approx(-15.0)
    # every difference negative, magnitudes distinct: W = 0, exact two-sided p = 2 / 2^5 = 0.0625
    assert wilcoxon.statistic == 0.0 and wilcoxon.p_value == pytest.approx(2 / 32)
    assert "n = 5: no result can reach p < 0.05" in wilcoxon.note
    too_few = paired_comparison([1.0, 2.0], [1.1, 2.1], "x")
    assert {r.note for r in too_few} == {"not computed: n = 2 (needs 3)"}


def test_confidence_outside_zero_one_is_refused():
    with pytest.raises(ParameterError, match="--confidence"):
        check_confidence(95)
