"""Lesson 05 — how sure a number is: spread across seeds, bootstrap, the sampling error of a test set.

* :func:`summarize_seeds` — mean, sample standard deviation and a Student-t interval;
* :func:`bootstrap_std` — the spread of a metric over resampled test sets;
* :func:`binomial_interval` — the sampling error of one accuracy on n test examples.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch

from kdtutor.images.metrics import check_predictions


# --------------------------------------------------------------------------- across seeds
# 0.975 quantiles of Student's t distribution for 1–30 degrees of freedom (scipy.stats.t.ppf;
# tests/test_evaluate.py compares them with scipy when it is installed).
_T975 = (12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157,
         2.228139, 2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922,
         2.093024, 2.085963, 2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831,
         2.048407, 2.045230, 2.042272)


def t_quantile_975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (for a 95 % interval).

    From a table for ``df ≤ 30``; beyond, the Cornish–Fisher expansion around the
    normal quantile 1.959964 (error < 1e-7). It falls towards 1.96 as df grows;
    for df = 1 (two seeds) it is 12.7, so two seeds give a very wide interval.
    """
    if int(df) != df or df < 1:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    df = int(df)
    if df <= len(_T975):
        return _T975[df - 1]
    z = statistics.NormalDist().inv_cdf(0.975)
    g = ((z**3 + z) / 4,
         (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160)
    return z + sum(gi / df ** (i + 1) for i, gi in enumerate(g))


@dataclass
class SeedSummary:
    """``mean``, sample ``std`` (ddof = 1) and the 95 % t-interval ``(low, high)`` of ``n`` values.

    With one value, ``std``, ``low`` and ``high`` are NaN: one run says nothing about the spread.
    """

    mean: float
    std: float
    low: float
    high: float
    n: int

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def __str__(self) -> str:
        if self.n < 2:
            return f"{self.mean:.4g} (1 run: no spread)"
        return f"{self.mean:.4g} ± {self.half_width:.2g} (95 % CI, n = {self.n}; std {self.std:.2g})"


def summarize_seeds(values, bounds: tuple[float, float] | None = None) -> SeedSummary:
    """Mean, sample standard deviation and 95 % confidence interval of one metric across seeds.

    The interval is ``mean ± t_{0.975, n−1} · std / √n`` (Student's t, for few runs
    whose metric is roughly normal). It says where the *mean over seeds* probably
    lies, not where a single new run will land. With 2 seeds t = 12.71, so the
    interval is very wide, and can leave the metric's range: ``bounds`` (e.g.
    ``(0, 100)`` for a percentage) clips it to what the metric can be.

    Args:
        values: ``n ≥ 1`` finite numbers (e.g. test accuracies of one recipe, one per seed).
    """
    xs = [float(v) for v in (values.tolist() if isinstance(values, torch.Tensor) else values)]
    if not xs:
        raise ValueError("summarize_seeds needs at least one value, got none")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"values must be finite numbers, got {xs}")
    n, mean = len(xs), statistics.fmean(xs)
    if n == 1:
        return SeedSummary(mean, math.nan, math.nan, math.nan, 1)
    std = statistics.stdev(xs)
    half = t_quantile_975(n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        if bounds[0] > bounds[1]:
            raise ValueError(f"bounds must be (low, high) with low ≤ high, got {bounds}")
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return SeedSummary(mean, std, low, high, n)


def bootstrap_std(metric, logits: torch.Tensor, labels: torch.Tensor, n_resamples: int = 200, seed: int = 0) -> float:
    """Standard deviation of ``metric(logits, labels)`` over bootstrap resamples of the rows.

    How much the metric would move with another test set of the same size: e.g. for
    accuracy p on N images it is close to ``sqrt(p (1 − p) / N)``. ``metric`` takes
    ``(logits (N, C), labels (N,))`` and returns a float.
    """
    check_predictions(logits, labels)
    if n_resamples < 2:
        raise ValueError(f"n_resamples must be at least 2, got {n_resamples}")
    g = torch.Generator().manual_seed(seed)
    n = len(labels)
    values = [metric(logits[idx], labels[idx]) for idx in (torch.randint(0, n, (n,), generator=g)
                                                           for _ in range(n_resamples))]
    return statistics.stdev(values)



def binomial_interval(accuracy: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % interval of an accuracy measured on ``n`` independent test examples (normal approximation).

    ``accuracy ± z · sqrt(accuracy · (1 − accuracy) / n)``, clipped to [0, 1]: the sampling
    error of one test split, even for a perfectly reproducible model.
    """
    if n < 1:
        raise ValueError(f"need at least one test example, got n = {n}")
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"accuracy must lie in [0, 1], got {accuracy}")
    half = z * math.sqrt(accuracy * (1 - accuracy) / n)
    return max(0.0, accuracy - half), min(1.0, accuracy + half)



# --------------------------------------------------------------------------- paired comparisons
VERDICTS = ("reliably better", "reliably worse", "inconclusive")


@dataclass
class PairedDifference:
    """Paired differences ``a_i − b_i`` over ``n`` seeds: their ``mean``, sample ``std``, the 95 %
    t-interval ``(low, high)`` of the mean, and ``mdd``: the *minimum detectable difference* — the
    true mean difference that this design (n seeds, this spread) calls significant at the 5 % level
    (two-sided paired t-test) with 80 % power, from the noncentral t distribution (close to the
    textbook ``(t_{0.975, n−1} + t_{0.80, n−1}) · std / √n`` with many seeds). Differences smaller
    than ``mdd`` may be real and still come out "inconclusive"."""

    mean: float
    std: float
    low: float
    high: float
    mdd: float
    n: int

    @property
    def verdict(self) -> str:
        """One of :data:`VERDICTS`: ``a`` reliably better (the interval lies above 0), reliably
        worse (below 0), or inconclusive (it contains 0)."""
        if self.low > 0:
            return VERDICTS[0]
        if self.high < 0:
            return VERDICTS[1]
        return VERDICTS[2]


def paired_seed_difference(a, b) -> PairedDifference:
    """Compare two arms run on the same ``n ≥ 2`` seeds (``a[i]`` and ``b[i]`` share seed i).

    Args:
        a, b: sequences of ``n`` finite numbers each (e.g. test accuracies, in seed order).
    """
    a, b = [float(v) for v in a], [float(v) for v in b]
    if len(a) != len(b) or len(a) < 2:
        raise ValueError(f"paired differences need two equally long lists of ≥ 2 values, got {len(a)} and {len(b)}")
    s = summarize_seeds([x - y for x, y in zip(a, b)])
    return PairedDifference(s.mean, s.std, s.low, s.high, detectable_difference(s.std, s.n), s.n)


def detectable_difference(std: float, n: int, power: float = 0.80) -> float:
    """The true mean of ``n`` paired differences of spread ``std`` that a two-sided paired t-test at
    the 5 % level detects with probability ``power``: solves ``P(|T| > t_{0.975, n−1}) = power``
    for ``T`` noncentral t with ``n − 1`` degrees of freedom and noncentrality ``δ·√n / std``."""
    from scipy.optimize import brentq  # scipy comes with scikit-learn
    from scipy.stats import nct

    if n < 2 or not 0 < power < 1:
        raise ValueError(f"need n ≥ 2 and 0 < power < 1, got {n} and {power}")
    df, crit = n - 1, t_quantile_975(n - 1)

    def gap(nc: float) -> float:
        lower = nct.cdf(-crit, df, nc)  # the wrong-sign tail: tiny, and NaN in scipy for large nc
        return nct.sf(crit, df, nc) + (lower if math.isfinite(lower) else 0.0) - power

    high = crit + 1.0
    while gap(high) < 0:  # widen until the power is reached
        high *= 1.5
    return brentq(gap, 0.0, high, xtol=1e-10) * std / math.sqrt(n)


def verdict_sentence(p: PairedDifference, better: str, worse: str, scale: float = 1.0, unit: str = "",
                     words: tuple[str, str] = ("better", "worse")) -> str:
    """The course's one verdict, in words: ``p`` holds the paired differences ``better − worse`` over seeds;
    the verdict is :attr:`PairedDifference.verdict` (the 95 % t-interval of their mean), told with the
    differences, the interval and the design's minimum detectable difference (80 % power). ``scale`` and
    ``unit`` format the numbers (``scale=100, unit="points"`` for accuracies given as fractions); ``words``
    say what a positive and a negative difference mean (``("higher", "lower")`` where more is not better)."""
    u = f" {unit}" if unit else ""
    interval = f"95 % interval [{scale * p.low:+.2f}, {scale * p.high:+.2f}]{u}"
    power = (f"with this spread and {p.n} seeds the design detects a true difference of {scale * p.mdd:.2f}{u} "
             f"4 times in 5")
    said = {VERDICTS[0]: f"{better} is reliably {words[0]} than {worse}",
            VERDICTS[1]: f"{better} is reliably {words[1]} than {worse}",
            VERDICTS[2]: f"no reliable difference between {better} and {worse}"}[p.verdict]
    tail = " (a smaller true difference may hide in the interval)" if p.verdict == VERDICTS[2] else ""
    return f"{said}: mean paired difference {scale * p.mean:+.2f}{u}, {interval}; {power}{tail}"


def expected_maximum(k: int) -> float:
    """``E[max(Z_1, …, Z_k)]`` for ``k`` independent standard normals: by how many standard deviations the
    best of ``k`` equally good, noisy runs (a sweep's winner) beats their common mean on average
    (0 for k = 1, 1/√π ≈ 0.564 for k = 2, ≈ 1.029 for k = 4). Computed as ``∫ x · k φ(x) Φ(x)^(k−1) dx``."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x = torch.linspace(-12, 12, 48_001, dtype=torch.float64)
    pdf = torch.exp(-x * x / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1 + torch.erf(x / math.sqrt(2)))
    return float(torch.trapezoid(x * k * pdf * cdf ** (k - 1), x))
