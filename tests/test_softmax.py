"""kdtutor.kd.softmax against independent references: torch's own softmax, closed forms,
torch.distributions, and hypothesis properties."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kdtutor.kd import softmax as sm

TEMPERATURES = [0.1, 0.5, 1.0, 2.0, 4.0, 20.0]


def _logits(*shape, seed=0, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


# --------------------------------------------------------------------------- against torch
@pytest.mark.parametrize("T", TEMPERATURES)
def test_softmax_and_log_softmax_match_torch(T):
    z = _logits(6, 10)
    torch.testing.assert_close(sm.softmax(z, T=T), torch.softmax(z / T, dim=-1))
    torch.testing.assert_close(sm.log_softmax(z, T=T), torch.log_softmax(z / T, dim=-1))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_along_another_dim(dim):
    z = _logits(3, 4, 5)
    torch.testing.assert_close(sm.softmax(z, T=2.0, dim=dim), torch.softmax(z / 2.0, dim=dim))


def test_float32_matches_torch_and_keeps_dtype():
    z = _logits(4, 7, dtype=torch.float32)
    out = sm.log_softmax(z, T=3.0)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.log_softmax(z / 3.0, dim=-1))


def test_integer_logits_are_accepted_as_floats():
    z = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(sm.softmax(z), torch.softmax(z.float(), dim=-1))


# --------------------------------------------------------------------------- stability
@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_large_logits_stay_finite_and_correct(T):
    z = torch.tensor([[1e4, -1e4, 0.0, 9999.0], [-1e4, -1e4 + 1, -1e4 + 2, -1e4 + 3]])
    p = sm.softmax(z, T=T)
    logp = sm.log_softmax(z, T=T)
    assert torch.isfinite(p).all() and torch.isfinite(logp).all()
    # reference in float64, where these exponents are still handled by torch's own stable kernel
    torch.testing.assert_close(logp.double(), torch.log_softmax(z.double() / T, dim=-1), rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(p.double(), torch.softmax(z.double() / T, dim=-1), rtol=1e-5, atol=1e-7)
    # closed form for the second row: a shifted arange, so softmax of [0, 1, 2, 3] / T
    torch.testing.assert_close(p[1].double(), torch.softmax(torch.arange(4.0, dtype=torch.float64) / T, 0),
                               rtol=1e-5, atol=1e-7)


def test_naive_softmax_overflows_to_nan():
    z = torch.tensor([[1e4, -1e4, 0.0]])
    naive = sm.naive_softmax(z)
    assert torch.isnan(naive).any(), naive  # inf / inf
    assert torch.isfinite(sm.softmax(z)).all()
    # and on small logits the naive formula is right (it is only numerically fragile)
    small = _logits(3, 5)
    torch.testing.assert_close(sm.naive_softmax(small, T=2.0), torch.softmax(small / 2.0, dim=-1))


def test_float32_exp_overflow_threshold_that_lesson_01_quotes():
    assert torch.isfinite(torch.exp(torch.tensor(88.0)))
    assert torch.isinf(torch.exp(torch.tensor(89.0)))


def test_small_temperature_does_not_overflow_float16():
    # dividing by T before subtracting the max would give inf − inf = NaN here
    z = torch.tensor([[1000.0, 0.0, 999.0]], dtype=torch.float16)
    p = sm.softmax(z, T=0.01)
    assert not torch.isnan(p).any()
    torch.testing.assert_close(p.double(), torch.softmax(z.double() / 0.01, dim=-1), atol=1e-3, rtol=0)


def test_log_softmax_of_tiny_probabilities_is_not_minus_inf():
    # log(softmax) would underflow to log 0 = −inf; log_softmax keeps the exact value
    z = torch.tensor([[0.0, -200.0]])
    assert torch.log(torch.softmax(z, dim=-1))[0, 1] == -math.inf
    assert sm.log_softmax(z)[0, 1].item() == pytest.approx(-200.0)


# --------------------------------------------------------------------------- entropy
@pytest.mark.parametrize("C", [2, 10, 1000])
def test_entropy_closed_forms(C):
    uniform = torch.full((C,), 1.0 / C, dtype=torch.float64)
    assert sm.entropy(uniform).item() == pytest.approx(math.log(C))
    one_hot = torch.zeros(C, dtype=torch.float64)
    one_hot[C // 2] = 1.0
    assert sm.entropy(one_hot).item() == 0.0
    assert sm.entropy_from_logits(torch.zeros(C)).item() == pytest.approx(math.log(C), rel=1e-6)


def test_entropy_matches_torch_distributions():
    z = _logits(8, 10)
    for T in TEMPERATURES:
        want = torch.distributions.Categorical(logits=z / T).entropy()
        torch.testing.assert_close(sm.entropy(sm.softmax(z, T=T)), want)
        torch.testing.assert_close(sm.entropy_from_logits(z, T=T), want)


def test_entropy_of_a_two_point_distribution():
    p = 0.3
    want = -(p * math.log(p) + (1 - p) * math.log(1 - p))
    assert sm.entropy(torch.tensor([p, 1 - p], dtype=torch.float64)).item() == pytest.approx(want)


def test_entropy_grows_with_temperature():
    z = _logits(10)
    hs = [sm.entropy_from_logits(z, T=T).item() for T in TEMPERATURES]
    assert all(a < b for a, b in zip(hs, hs[1:])), hs
    assert hs[-1] < math.log(10)


def test_entropy_rejects_negative_or_nan_probs():
    with pytest.raises(ValueError, match="finite and ≥ 0"):
        sm.entropy(torch.tensor([1.2, -0.2]))
    with pytest.raises(ValueError, match="finite"):
        sm.entropy(torch.tensor([float("nan"), 1.0]))


# --------------------------------------------------------------------------- temperature_summary
def test_temperature_summary_fields():
    z = torch.tensor([2.0, 1.0, 0.1, -1.0], dtype=torch.float64)
    s = sm.temperature_summary(z, 2.0)
    torch.testing.assert_close(s["probs"], torch.softmax(z / 2.0, dim=0))
    want_h = torch.distributions.Categorical(logits=z / 2.0).entropy().item()
    assert s["entropy"] == pytest.approx(want_h)
    assert s["max_entropy"] == pytest.approx(math.log(4))
    assert s["top_prob"] == pytest.approx(torch.softmax(z / 2.0, 0).max().item())
    assert s["effective_classes"] == pytest.approx(math.exp(want_h))
    assert s["T"] == 2.0


def test_effective_classes_limits():
    z = torch.tensor([5.0, 0.0, 0.0, 0.0])
    assert sm.temperature_summary(z, 0.01)["effective_classes"] == pytest.approx(1.0, abs=1e-6)
    assert sm.temperature_summary(z, 1e6)["effective_classes"] == pytest.approx(4.0, rel=1e-4)


def test_temperature_summary_wants_one_vector():
    with pytest.raises(ValueError, match=r"shape \(C,\)"):
        sm.temperature_summary(torch.zeros(2, 3), 1.0)


# --------------------------------------------------------------------------- temperature_for_entropy
@pytest.mark.parametrize("target", [0.3, 1.0, 2.0, 2.25])
def test_temperature_for_entropy_reaches_the_target(target):
    z = torch.tensor([-1.0, -2.0, 2.0, 9.0, 3.0, 6.5, 2.5, 1.5, -1.5, -2.5])
    T = sm.temperature_for_entropy(z, target)
    got = torch.distributions.Categorical(logits=z.double() / T).entropy().item()
    assert got == pytest.approx(target, abs=1e-8)


def test_temperature_for_entropy_scales_with_the_logits():
    z = _logits(6, seed=3)
    T1 = sm.temperature_for_entropy(z, 1.0)
    assert sm.temperature_for_entropy(50 * z, 1.0) == pytest.approx(50 * T1, rel=1e-7)


@pytest.mark.parametrize("target, match", [
    (0.0, "strictly between 0 and log C"),
    (math.log(4), "strictly between 0 and log C"),
    (float("nan"), "strictly between"),
    (-1.0, "strictly between"),
])
def test_temperature_for_entropy_rejects_impossible_targets(target, match):
    with pytest.raises(ValueError, match=match):
        sm.temperature_for_entropy(torch.tensor([1.0, 2.0, 3.0, 4.0]), target)


def test_temperature_for_entropy_rejects_equal_logits_and_unreachable_ties():
    with pytest.raises(ValueError, match="all logits are equal"):
        sm.temperature_for_entropy(torch.ones(5), 1.0)
    # two logits tie for the top: the entropy never drops below log 2 ≈ 0.693
    with pytest.raises(ValueError, match="no temperature"):
        sm.temperature_for_entropy(torch.tensor([3.0, 3.0, 0.0]), 0.5)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("T", [0, 0.0, -1.0, float("nan"), float("inf"), -float("inf")])
def test_bad_temperature_raises(T):
    with pytest.raises(ValueError, match=r"temperature T must be finite and > 0"):
        sm.softmax(torch.zeros(3), T=T)


def test_temperature_must_be_a_number():
    with pytest.raises(ValueError, match="must be a number"):
        sm.softmax(torch.zeros(3), T="hot")
    with pytest.raises(ValueError, match="single number"):
        sm.softmax(torch.zeros(3), T=torch.tensor([1.0, 2.0]))
    assert sm.check_temperature(torch.tensor(2.0)) == 2.0


@pytest.mark.parametrize("bad, match", [
    (float("nan"), r"1 NaN and 0 infinite"),
    (float("inf"), r"0 NaN and 1 infinite"),
    (-float("inf"), r"0 NaN and 1 infinite"),
])
def test_non_finite_logits_raise(bad, match):
    z = torch.tensor([[0.0, 1.0, bad]])
    for fn in (sm.softmax, sm.log_softmax, sm.entropy_from_logits):
        with pytest.raises(ValueError, match=match):
            fn(z)


def test_scalar_and_non_tensor_logits_raise():
    with pytest.raises(ValueError, match="class dimension"):
        sm.softmax(torch.tensor(1.0))
    with pytest.raises(TypeError, match="torch.Tensor"):
        sm.softmax([1.0, 2.0])


# --------------------------------------------------------------------------- properties
_rows = st.lists(st.floats(-50, 50, allow_nan=False, width=32), min_size=2, max_size=12)
_temps = st.floats(0.05, 50.0)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(_rows.map(tuple), min_size=1, max_size=4).filter(lambda r: len({len(x) for x in r}) == 1),
       T=_temps)
def test_softmax_rows_sum_to_one_and_are_probabilities(rows, T):
    z = torch.tensor(rows, dtype=torch.float64)
    p = sm.softmax(z, T=T)
    assert (p >= 0).all() and (p <= 1).all()
    torch.testing.assert_close(p.sum(dim=-1), torch.ones(len(rows), dtype=torch.float64))


@settings(max_examples=80, deadline=None)
@given(row=_rows, T=_temps, shift=st.floats(-1e3, 1e3))
def test_softmax_ignores_a_constant_added_to_every_logit(row, T, shift):
    z = torch.tensor(row, dtype=torch.float64)
    torch.testing.assert_close(sm.softmax(z + shift, T=T), sm.softmax(z, T=T), atol=1e-9, rtol=1e-6)
    torch.testing.assert_close(sm.log_softmax(z + shift, T=T), sm.log_softmax(z, T=T), atol=1e-9, rtol=1e-6)


@settings(max_examples=60, deadline=None)
@given(row=_rows, T=_temps)
def test_entropy_lies_between_zero_and_log_c(row, T):
    h = sm.entropy_from_logits(torch.tensor(row, dtype=torch.float64), T=T).item()
    assert -1e-12 <= h <= math.log(len(row)) + 1e-12


def test_high_temperature_keeps_the_centred_logits_lesson_01_reads_them_back():
    # p_c = softmax(z / T)_c ≈ (1 + (z_c − mean z) / T) / C, so C·T·(p − 1/C) → z − mean z as T grows
    z = torch.tensor([-1.0, -2.0, 2.0, 9.0, 3.0, 6.5, 2.5, 1.5, -1.5, -2.5], dtype=torch.float64)
    C, centred = z.numel(), z - z.mean()
    errors = [(C * T * (sm.softmax(z, T=T) - 1 / C) - centred).abs().max().item() for T in (10.0, 100.0, 1000.0)]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.05, errors
    # the error shrinks like 1/T (the next term of the expansion)
    assert errors[1] / errors[2] == pytest.approx(10.0, rel=0.05)
