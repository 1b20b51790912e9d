"""kdtutor.images.stats.paired_seed_difference: the paired t-interval against scipy's paired t-test, the
minimum detectable difference against the power of the noncentral t, and the three verdicts."""

import math

import pytest
import scipy.stats as sp

from kdtutor.images import stats


@pytest.mark.parametrize("a, b", [([0.61, 0.63, 0.60, 0.64, 0.62], [0.60, 0.60, 0.61, 0.62, 0.60]),
                                  ([1.0, 2.0, 4.0], [1.5, 1.0, 5.0])])
def test_interval_matches_scipys_paired_t_test(a, b):
    d = stats.paired_seed_difference(a, b)
    ci = sp.ttest_rel(a, b).confidence_interval(0.95)
    assert d.low == pytest.approx(ci.low, rel=1e-6) and d.high == pytest.approx(ci.high, rel=1e-6)
    assert d.mean == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert d.n == len(a)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_a_true_difference_of_the_mdd_is_found_four_times_in_five(n):
    d = stats.paired_seed_difference([0.7 * x for x in range(n)], [0.0] * n)  # only its std and n matter here
    crit = sp.t.ppf(0.975, n - 1)
    nc = d.mdd / d.std * math.sqrt(n)
    power = sp.nct.sf(crit, n - 1, nc) + sp.nct.cdf(-crit, n - 1, nc)
    assert power == pytest.approx(0.80, abs=1e-6)


def test_mdd_approaches_the_textbook_formula_with_many_seeds():
    for n, tol in [(5, 0.03), (30, 0.002)]:
        approx = (sp.t.ppf(0.975, n - 1) + sp.t.ppf(0.80, n - 1)) / math.sqrt(n)
        assert stats.detectable_difference(1.0, n) == pytest.approx(approx, rel=tol)
    assert stats.detectable_difference(2.0, 5) == pytest.approx(2 * stats.detectable_difference(1.0, 5))


def test_three_verdicts():
    assert stats.paired_seed_difference([2, 3, 4], [0, 1, 1.5]).verdict == "reliably better"
    assert stats.paired_seed_difference([0, 1, 1.5], [2, 3, 4]).verdict == "reliably worse"
    assert stats.paired_seed_difference([1, 2, 3], [2, 1, 3]).verdict == "inconclusive"
    assert set(stats.VERDICTS) == {"reliably better", "reliably worse", "inconclusive"}


def test_verdict_sentence_says_higher_or_lower_where_more_is_not_better():
    up, down = stats.paired_seed_difference([2, 3, 4], [0, 1, 1.5]), stats.paired_seed_difference([0, 1, 1.5], [2, 3, 4])
    assert stats.verdict_sentence(up, "A", "B").startswith("A is reliably better than B: mean paired difference +2.17")
    assert stats.verdict_sentence(up, "A", "B", words=("higher", "lower")).startswith("A is reliably higher than B")
    assert stats.verdict_sentence(down, "A", "B", words=("higher", "lower")).startswith("A is reliably lower than B")


def test_paired_difference_rejects_unpaired_or_single_runs():
    with pytest.raises(ValueError, match="equally long"):
        stats.paired_seed_difference([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="≥ 2 values"):
        stats.paired_seed_difference([1], [2])
    with pytest.raises(ValueError, match="finite"):
        stats.paired_seed_difference([1, float("nan")], [2, 3])


def test_the_one_rule_says_reliable_more_often_with_more_seeds():
    """Simulated: a fixed true gain of 1.05 points with a spread of 0.64 (lesson 04's stored run). The rule
    (the paired t-interval's verdict) calls it reliably better more often as seeds are added, as often as the
    noncentral t's power says; the old 'mean > 2·std' cut-off did the opposite (0.48 → 0.16 from 3 to 20 seeds)."""
    import numpy as np

    rng = np.random.default_rng(0)
    rates = {}
    for n in (3, 5, 10):
        hits = 0
        for _ in range(400):
            diffs = rng.normal(1.05, 0.64, n)
            hits += stats.paired_seed_difference(diffs, [0.0] * n).verdict == "reliably better"
        rates[n] = hits / 400
        crit = sp.t.ppf(0.975, n - 1)
        power = sp.nct.sf(crit, n - 1, 1.05 / 0.64 * math.sqrt(n))
        assert rates[n] == pytest.approx(power, abs=0.07), (n, rates[n], power)
    assert rates[3] < rates[5] < rates[10], rates


def test_the_old_two_std_rule_is_gone_from_the_package():
    """Lesson 04's old cut-off ('mean gain more than twice the spread of the paired differences') is not
    used anywhere in kdtutor or the course tooling any more."""
    from pathlib import Path

    root = Path(stats.__file__).resolve().parents[2]
    files = [*(root / "kdtutor").rglob("*.py"), *(root / "coursetools").rglob("*.py")]
    rules = [p for p in files if "twice their spread" in p.read_text() or "2 * statistics.stdev" in p.read_text()]
    assert rules == [], f"an old verdict rule is still in {rules}"
