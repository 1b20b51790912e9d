"""Lesson 06's exercises: typical wrong answers fail their checks, with a message naming the mistake."""

import statistics

import torch.nn.functional as F

from kdtutor import checks
from solutions import lesson06 as sol


def _fails(check, fn, *words):
    result = check(fn, verbose=False)
    assert result.passed is False, result.message
    for w in words:
        assert w in result.message, result.message


def test_nckd_without_renormalising_fails():
    def wrong(s, z, y, T):
        mask = F.one_hot(y, s.shape[1]).bool()
        p, logq = F.softmax(z / T, 1), F.log_softmax(s / T, 1)
        return (p * (p.log() - logq)).masked_fill(mask, 0).sum(1)
    _fails(checks.nckd_per_example, wrong, "renormalised")


def test_nckd_masking_the_teachers_argmax_fails():
    def wrong(s, z, y, T):
        return sol.nckd_per_example(s, z, z.argmax(1), T)
    _fails(checks.nckd_per_example, wrong, "true label")


def test_nckd_with_the_kd_weight_or_t_squared_fails():
    def weighted(s, z, y, T):
        p_t = F.softmax(z / T, 1).gather(1, y[:, None]).squeeze(1)
        return (1 - p_t) * sol.nckd_per_example(s, z, y, T)
    _fails(checks.nckd_per_example, weighted, "β")
    _fails(checks.nckd_per_example, lambda s, z, y, T: T * T * sol.nckd_per_example(s, z, y, T), "T²")


def test_nckd_detached_fails():
    _fails(checks.nckd_per_example, lambda s, z, y, T: sol.nckd_per_example(s.detach(), z, y, T), "not connected")


def test_standardize_over_the_batch_axis_fails():
    _fails(checks.standardize, lambda z: (z - z.mean(0, keepdim=True)) / z.std(0, keepdim=True), "dim=0")


def test_standardize_without_centering_or_with_population_std_fails():
    _fails(checks.standardize, lambda z: z / z.std(1, keepdim=True), "mean")
    _fails(checks.standardize, lambda z: (z - z.mean(1, keepdim=True)) / z.std(1, unbiased=False, keepdim=True),
           "Bessel")


def test_paired_gain_unpaired_std_fails():
    def unpaired(m, k):
        return statistics.mean(m) - statistics.mean(k), (statistics.variance(m) + statistics.variance(k)) ** 0.5
    _fails(checks.paired_gain, unpaired, "unpaired")


def test_paired_gain_wrong_sign_or_population_std_fails():
    _fails(checks.paired_gain, lambda m, k: sol.paired_gain(k, m), "sign")

    def population(m, k):
        d = [a - b for a, b in zip(m, k)]
        return statistics.mean(d), statistics.pstdev(d)
    _fails(checks.paired_gain, population, "population")
