"""Small-sample statistical tests of a cohort study, honest about what n allows.

Every result is a :class:`TestResult` that carries its sample size ``n``, the
smallest p-value the test can reach at that n (``min_p``), and a ``note``
saying why a number is missing ("not computed: n = 2") or why no result could
be significant ("n = 4: no result can reach p < 0.05").

- **Spearman** rho with an exact permutation p for n <= 9 (all n! orderings
  of one variable enumerated; scipy's t approximation gives p = 0 at
  rho = +-1 for n = 4, whereas the exact two-sided p is 2/4! = 0.083) and a
  Fisher-z confidence interval with the standard error of Bonett & Wright
  (2000, Psychometrika 65:23), sqrt((1 + rho^2/2) / (n - 3)), undefined for
  n <= 3.
- **Mann-Whitney U** (two-sided; exact null distribution without ties,
  scipy ``method="exact"``) with the Hodges-Lehmann shift (median of all
  pairwise differences) and its distribution-free (Moses) confidence
  interval from the exact null distribution of U.
- **Paired comparison** of two methods on the same subjects: mean
  percentage difference with a Student-t interval, Wilcoxon signed-rank
  (exact for small n without ties or zeros), and the Bland-Altman bias and
  95 % limits of agreement with their confidence intervals (Bland & Altman
  1999, Stat Methods Med Res 8:135: SE(bias) = s / sqrt(n),
  SE(limit) ~ sqrt(3 s^2 / n)).
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from petrecon.errors import ParameterError

#: Fewest observations (pairs, subjects per group) for which a test is computed.
MIN_N = 3
#: Largest n for which Spearman's p is exact (n! orderings enumerated: 9! = 362880).
EXACT_SPEARMAN_MAX_N = 9
#: The significance level against which "no result can reach p < ..." is judged.
ALPHA = 0.05


@dataclass(frozen=True)
class TestResult:
    """One test of one comparison: statistic, p, estimate with its confidence interval, and the sample size.

    Empty fields are None; ``note`` says why.
    """

    __test__ = False  # not a pytest class

    test: str
    comparison: str
    n: str
    statistic: float | None = None
    p_value: float | None = None
    estimate: str = ""
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    min_p: float | None = None
    method: str = ""
    note: str = ""

    def to_dict(self) -> dict:
        """Plain dict (one row of ``tests.csv``)."""
        return asdict(self)


def check_confidence(confidence: float) -> float:
    """``confidence`` if it is in (0, 1), else ParameterError."""
    if not 0.0 < confidence < 1.0:
        raise ParameterError(f"--confidence must lie between 0 and 1 (e.g. 0.95), got {confidence}")
    return confidence


def _unreachable_note(n: int | str, min_p: float) -> str:
    return f"n = {n}: no result can reach p < {ALPHA:g}" if min_p >= ALPHA else ""


def _too_small(test: str, comparison: str, n: int | str, needed: int = MIN_N) -> TestResult:
    return TestResult(test, comparison, str(n), note=f"not computed: n = {n} (needs {needed})")


@functools.lru_cache(maxsize=2)
def _orderings(n: int) -> np.ndarray:
    """All n! orderings of range(n), (n!, n) int8 (9! x 9 = 3.3 MB), kept for the next stratum."""
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


def spearman_exact_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided permutation p of Spearman's rho: the share of all n! orderings of ``y`` whose |rho| reaches
    the observed one (ties: average ranks, kept through the permutations).

    Examples
    --------
    >>> round(spearman_exact_p(np.array([1.0, 2, 3, 4]), np.array([4.0, 3, 2, 1])), 4)  # 2 / 4!
    0.0833
    """
    rx, ry = stats.rankdata(x), stats.rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    products = ry[_orderings(len(ry))] @ rx  # the numerator of rho under every ordering; the denominator is fixed
    observed = abs(float(ry @ rx))
    return float(np.mean(np.abs(products) >= observed - 1e-9 * max(observed, 1.0)))


def spearman(x, y, comparison: str, *, confidence: float = 0.95) -> TestResult:
    """Spearman rank correlation of paired samples ``x`` and ``y``.

    p is exact (enumerated) for n <= :data:`EXACT_SPEARMAN_MAX_N`, else scipy's t approximation; the interval is
    Fisher's z with Bonett & Wright's standard error.

    Examples
    --------
    >>> r = spearman([1, 2, 3, 4], [8, 6, 4, 2], "x vs y")
    >>> r.statistic, round(r.p_value, 4), r.note
    (-1.0, 0.0833, 'n = 4: no result can reach p < 0.05; |rho| = 1: Fisher-z interval infinite')
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    n = len(x)
    if n < MIN_N:
        return _too_small("Spearman", comparison, n)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return TestResult("Spearman", comparison, str(n), note="not computed: one variable is constant")
    rho = float(stats.spearmanr(x, y).statistic)
    exact = n <= EXACT_SPEARMAN_MAX_N
    p = spearman_exact_p(x, y) if exact else float(stats.spearmanr(x, y).pvalue)
    min_p = 2.0 / math.factorial(n)
    notes = [_unreachable_note(n, min_p)]
    low = high = None
    if n <= 3:
        notes.append("n <= 3: Fisher-z interval undefined")
    elif abs(rho) >= 1.0:
        notes.append("|rho| = 1: Fisher-z interval infinite")
    else:
        se = math.sqrt((1.0 + rho**2 / 2.0) / (n - 3))
        z = stats.norm.ppf(0.5 + confidence / 2.0)
        low, high = (float(np.tanh(np.arctanh(rho) + s * z * se)) for s in (-1, 1))
    return TestResult("Spearman", comparison, str(n), rho, p, "rho", rho, low, high, min_p,
                      "exact permutation" if exact else "t approximation", "; ".join(filter(None, notes)))


def mann_whitney_u_counts(m: int, n: int) -> np.ndarray:
    """Number of the C(m + n, m) arrangements of two untied samples (sizes m, n) giving U = 0 .. m n.

    Recurrence f(m, n; u) = f(m - 1, n; u - n) + f(m, n - 1; u) (the largest observation belongs to the first
    sample, adding n to U, or to the second).

    Examples
    --------
    >>> mann_whitney_u_counts(2, 2).tolist()
    [1.0, 1.0, 2.0, 1.0, 1.0]
    """
    table = {(0, j): np.ones(1) for j in range(n + 1)}
    table.update({(i, 0): np.ones(1) for i in range(m + 1)})
    for i in range(1, m + 1):
        for j in range(1, n + 1):
            counts = np.zeros(i * j + 1)
            counts[j:] += table[i - 1, j]
            counts[: len(table[i, j - 1])] += table[i, j - 1]
            table[i, j] = counts
    return table[m, n]


def hodges_lehmann(a, b, *, confidence: float = 0.95) -> tuple[float, float | None, float | None]:
    """Hodges-Lehmann shift of ``b`` relative to ``a`` (median of the m n differences b_j - a_i) and its
    distribution-free confidence interval [D_(k), D_(mn+1-k)], k the largest integer with P(U <= k - 1) <=
    (1 - confidence) / 2 under the exact null distribution of U (None, None when even k = 1 is too wide).

    Examples
    --------
    >>> hodges_lehmann([1, 2, 3, 4, 5], [11, 12, 13, 14, 15])
    (10.0, 7.0, 13.0)
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    differences = np.sort((b[None, :] - a[:, None]).ravel())
    shift = float(np.median(differences))
    counts = mann_whitney_u_counts(len(a), len(b))
    cumulative = np.cumsum(counts) / counts.sum()
    k = int(np.searchsorted(cumulative, (1.0 - confidence) / 2.0 * (1 + 1e-12), side="right"))
    if k == 0:
        return shift, None, None
    return shift, float(differences[k - 1]), float(differences[len(differences) - k])


def mann_whitney(a, b, comparison: str, *, confidence: float = 0.95) -> TestResult:
    """Two-sided Mann-Whitney U of samples ``a`` and ``b`` (exact without ties) with the Hodges-Lehmann shift
    of ``b`` over ``a`` and its confidence interval.

    Examples
    --------
    >>> r = mann_whitney([1, 2, 3], [4, 5, 6], "A vs B")
    >>> r.statistic, round(r.p_value, 3), r.note
    (0.0, 0.1, 'n = 3 vs 3: no result can reach p < 0.05; shift interval needs larger groups')
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = f"{len(a)} vs {len(b)}"
    if min(len(a), len(b)) < MIN_N:
        return _too_small("Mann-Whitney U", comparison, n)
    tied = len(np.unique(np.concatenate([a, b]))) < len(a) + len(b)
    method = "asymptotic" if tied else "exact"
    result = stats.mannwhitneyu(a, b, alternative="two-sided", method=method)
    min_p = 2.0 / math.comb(len(a) + len(b), len(a))
    shift, low, high = hodges_lehmann(a, b, confidence=confidence)
    notes = [_unreachable_note(n, min_p), "ties: normal approximation" if tied else "",
             "shift interval needs larger groups" if low is None else ""]
    return TestResult("Mann-Whitney U", comparison, n, float(result.statistic), float(result.pvalue),
                      "Hodges-Lehmann shift", shift, low, high, min_p, method, "; ".join(filter(None, notes)))


def t_half_width(values: np.ndarray, confidence: float, se_scale: float = 1.0) -> float:
    """Half-width of the Student-t interval of a mean (``se_scale`` x s / sqrt(n), n - 1 degrees of freedom)."""
    n = len(values)
    return float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * se_scale * values.std(ddof=1) / math.sqrt(n))


def paired_comparison(reference, other, comparison: str, *, confidence: float = 0.95,
                      tests: tuple[str, ...] = ("difference", "wilcoxon", "bland-altman")) -> list[TestResult]:
    """Compare ``other`` with ``reference`` measured on the same subjects (pairs in order).

    Rows: mean percentage difference 100 (other - reference) / reference with its t interval; Wilcoxon
    signed-rank of other - reference; Bland-Altman bias, lower and upper 95 % limits of agreement
    (bias -+ 1.96 s) each with its confidence interval.

    Examples
    --------
    >>> rows = paired_comparison([1.0, 2, 3, 4, 5], [1.1, 2.3, 3.2, 4.6, 5.4], "A vs B", tests=("bland-altman",))
    >>> [(r.estimate, round(r.value, 3)) for r in rows]
    [('bias', 0.32), ('lower limit of agreement', -0.057), ('upper limit of agreement', 0.697)]
    """
    reference, other = np.asarray(reference, float), np.asarray(other, float)
    n = len(reference)
    if n < MIN_N:
        return [_too_small(name, comparison, n) for name in _PAIRED_NAMES if _PAIRED_TESTS[name] in tests]
    rows = []
    if "difference" in tests:
        if np.any(reference <= 0):
            rows.append(TestResult("mean % difference", comparison, str(n),
                                   note="not computed: a reference value is <= 0"))
        else:
            percent = 100.0 * (other - reference) / reference
            half = t_half_width(percent, confidence)
            mean = float(percent.mean())
            rows.append(TestResult("mean % difference", comparison, str(n), estimate="% difference", value=mean,
                                   ci_low=mean - half, ci_high=mean + half, method="Student t"))
    if "wilcoxon" in tests:
        rows.append(_wilcoxon(other - reference, comparison))
    if "bland-altman" in tests:
        rows += _bland_altman(other - reference, comparison, confidence)
    return rows


def _wilcoxon(differences: np.ndarray, comparison: str) -> TestResult:
    n = len(differences)
    if not np.any(differences):
        return TestResult("Wilcoxon signed-rank", comparison, str(n), note="not computed: all differences are 0")
    magnitudes = np.abs(differences[differences != 0])
    exact = len(magnitudes) == n and len(np.unique(magnitudes)) == n
    result = stats.wilcoxon(differences, method="exact" if exact else "auto")
    min_p = 2.0 / 2.0**n
    notes = [_unreachable_note(n, min_p), "" if exact else "ties or zero differences: approximate p"]
    return TestResult("Wilcoxon signed-rank", comparison, str(n), float(result.statistic), float(result.pvalue),
                      "median difference", float(np.median(differences)), min_p=min_p,
                      method="exact" if exact else "approximate", note="; ".join(filter(None, notes)))


def _bland_altman(differences: np.ndarray, comparison: str, confidence: float) -> list[TestResult]:
    n = len(differences)
    bias, s = float(differences.mean()), float(differences.std(ddof=1))
    z = float(stats.norm.ppf(0.975))  # the limits of agreement hold 95 % of differences
    bias_half = t_half_width(differences, confidence)
    limit_half = t_half_width(differences, confidence, se_scale=math.sqrt(3.0))
    rows = [TestResult("Bland-Altman", comparison, str(n), estimate="bias", value=bias, ci_low=bias - bias_half,
                       ci_high=bias + bias_half, method="Student t")]
    for name, limit in (("lower", bias - z * s), ("upper", bias + z * s)):
        rows.append(TestResult("Bland-Altman", comparison, str(n), estimate=f"{name} limit of agreement", value=limit,
                               ci_low=limit - limit_half, ci_high=limit + limit_half,
                               method="SE sqrt(3 s^2 / n), Student t"))
    return rows


_PAIRED_TESTS = {"mean % difference": "difference", "Wilcoxon signed-rank": "wilcoxon",
                 "Bland-Altman": "bland-altman"}
_PAIRED_NAMES = tuple(_PAIRED_TESTS)
