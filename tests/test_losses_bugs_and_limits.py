"""The newer claims of lesson 02, each against an independent reference: the hard-label
gradient as a special case of (q − p)/T, the exact high-temperature limit with an offset,
MSE on probabilities (value, gradient, saturation, limit), the "student never sees the
teacher" diagnostic, pure distillation without labels, and the PyTorch tutorial's loss."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdtutor.kd import losses as L

N, C = 6, 10


def _logits(*shape, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64) * scale


def _labels(seed=0):
    return torch.randint(0, C, (N,), generator=torch.Generator().manual_seed(seed))


def _grad(fn, z):
    z = z.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(z), z)
    return g


def _centred(z):
    return z - z.mean(dim=1, keepdim=True)


# --------------------------------------------------------------------------- the derivation of lesson 02, section 3
def test_hard_label_gradient_is_the_special_case_t1_and_p_onehot():
    s, y = _logits(N, C), _labels()
    onehot = F.one_hot(y, C).double()
    q = torch.softmax(s, dim=1)
    # (q − p)/T with T = 1 and p = onehot(y) …
    torch.testing.assert_close(_grad(lambda z: L.cross_entropy(z, y), s), (q - onehot) / N)
    # … and KL(onehot ‖ q) = CE(y, q) because H(onehot) = 0 (soft_cross_entropy with a one-hot target)
    huge = 1e4 * onehot  # logits whose softmax is one-hot to double precision
    torch.testing.assert_close(L.soft_cross_entropy(s, huge), F.cross_entropy(s, y))


# --------------------------------------------------------------------------- high temperature, exactly
def test_high_temperature_limit_with_an_offset_is_the_centred_mse_ratio():
    s, t = _centred(_logits(8, C)), _centred(_logits(8, C, seed=1))
    offset = 2.0
    mse0 = L.logit_mse(s, t).item()
    limit = mse0 / (mse0 + offset ** 2)  # the offset adds c² to the MSE (centred rows have Σ(s − t) = 0), not to the KL
    ratio = (L.kd_loss(s + offset, t, T=1e4) / (L.logit_mse(s + offset, t) / 2)).item()
    assert ratio == pytest.approx(limit, rel=1e-4)
    # and the limit in general is ½ · MSE of the centred logits, whatever the rows' means
    a, b = _logits(8, C, seed=2) + 3.0, _logits(8, C, seed=3) - 1.0
    half_centred = (L.logit_mse(_centred(a), _centred(b)) / 2).item()
    assert L.kd_loss(a, b, T=1e4).item() == pytest.approx(half_centred, rel=1e-3)


def test_float32_cannot_resolve_the_high_temperature_ratio_but_float64_can():
    s, t = _centred(_logits(8, C)), _centred(_logits(8, C, seed=1))
    exact = L.kd_loss(s, t, T=1e3).item()
    f32 = L.kd_loss(s.float(), t.float(), T=1e3).item()
    assert abs(f32 / exact - 1) > 1e-4  # rounding noise in float32 at T = 1000 …
    assert L.kd_loss(s, t, T=1e3).dtype == torch.float64  # … which the lesson's float64 table avoids


# --------------------------------------------------------------------------- MSE on probabilities
@pytest.mark.parametrize("T", [1.0, 4.0])
def test_probability_mse_matches_torch(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    q, p = torch.softmax(s / T, 1), torch.softmax(t / T, 1)
    torch.testing.assert_close(L.probability_mse(s, t, T=T), F.mse_loss(q, p, reduction="sum") / (2 * N))


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_probability_mse_gradient_is_the_kl_gradient_weighted_by_q(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    q, p = torch.softmax(s / T, 1), torch.softmax(t / T, 1)
    d = q - p
    want = q * (d - (q * d).sum(dim=1, keepdim=True)) / (T * N)
    torch.testing.assert_close(_grad(lambda z: L.probability_mse(z, t, T=T), s), want)


def test_probability_mse_gradient_vanishes_for_a_saturated_wrong_student_kl_does_not():
    t = _logits(N, C, seed=1)
    wrong = (t.argmax(dim=1) + 1) % C  # a class the teacher does not pick
    s = 40.0 * F.one_hot(wrong, C).double()  # saturated: q is one-hot on a wrong class
    g_mse = _grad(lambda z: L.probability_mse(z, t), s).norm().item()
    g_kl = _grad(lambda z: L.kl_divergence(z, t), s).norm().item()
    assert g_mse < 1e-12 < 0.1 < g_kl, (g_mse, g_kl)


def test_probability_mse_high_temperature_limit_is_logit_matching_scaled_by_c():
    s, t = _centred(_logits(N, C, scale=1.0)), _centred(_logits(N, C, seed=1, scale=1.0))
    T = 1e4
    scaled = (C * T * T * L.probability_mse(s, t, T=T)).item()
    assert scaled == pytest.approx((L.logit_mse(s, t) / 2).item(), rel=1e-3)


# --------------------------------------------------------------------------- the student never sees the teacher
def test_teacher_gradient_effect_is_positive_for_distillation():
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    assert L.teacher_gradient_effect(lambda z, w: L.distillation_loss(z, w, y, T=4.0, alpha=0.9), s, t) > 0.3
    assert L.teacher_gradient_effect(lambda z, w: L.kd_loss(z, w, T=2.0), s, t) > 0.3


def test_teacher_gradient_effect_is_zero_when_the_soft_labels_are_never_used():
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()

    def computed_but_unused(z, w, T=4.0):
        soft_labels = F.softmax(w / T, dim=1)  # noqa: F841  (the bug: never enters the loss)
        return F.cross_entropy(z, y)

    assert L.teacher_gradient_effect(computed_but_unused, s, t) == 0.0
    # α = 0 is training from scratch: no teacher in the gradient, and exactly the CE
    assert L.teacher_gradient_effect(lambda z, w: L.distillation_loss(z, w, y, alpha=0.0), s, t) == 0.0
    assert torch.equal(L.distillation_loss(s, t, y, alpha=0.0), L.cross_entropy(s, y))


def test_teacher_gradient_effect_rejects_a_loss_without_the_student():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    with pytest.raises(ValueError, match="does not depend on the student"):
        L.teacher_gradient_effect(lambda z, w: L.kd_loss(z.detach(), w, T=2.0), s, t)


# --------------------------------------------------------------------------- labels=None and the PyTorch tutorial
def test_pure_distillation_needs_no_labels():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    torch.testing.assert_close(L.distillation_loss(s, t, None, T=4.0, alpha=1.0), L.kd_loss(s, t, T=4.0))
    with pytest.raises(ValueError, match="labels=None is only allowed for pure distillation"):
        L.distillation_loss(s, t, None, T=4.0, alpha=0.9)


def test_pytorch_tutorial_loss_is_ours_at_alpha_025_plus_a_constant():
    # Earlier revisions of PyTorch's KD tutorial (a later one computes the KL): 0.25 · T² · soft CE + 0.75 · CE, T = 2, soft CE = −Σ p log q / N
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    T = 2.0
    p, logq = torch.softmax(t / T, dim=-1), torch.log_softmax(s / T, dim=-1)
    tutorial = 0.25 * (-torch.sum(p * logq) / logq.size()[0] * T ** 2) + 0.75 * F.cross_entropy(s, y)
    H = torch.distributions.Categorical(probs=p).entropy().mean()
    ours = L.distillation_loss(s, t, y, T=T, alpha=0.25)
    torch.testing.assert_close(tutorial, ours + 0.25 * T ** 2 * H)
    torch.testing.assert_close(
        _grad(lambda z: 0.25 * T ** 2 * L.soft_cross_entropy(z, t, T=T) + 0.75 * L.cross_entropy(z, y), s),
        _grad(lambda z: L.distillation_loss(z, t, y, T=T, alpha=0.25), s))


def test_exp_overflow_thresholds_quoted_in_lesson_01():
    from kdtutor.kd.softmax import exp_overflow_threshold

    for dtype, want in [(torch.float16, 11.09), (torch.bfloat16, 88.72), (torch.float32, 88.72)]:
        x = exp_overflow_threshold(dtype)
        assert x == pytest.approx(want, abs=0.01)
        assert torch.isfinite(torch.exp(torch.tensor(x * 0.999, dtype=dtype)))
        assert torch.isinf(torch.exp(torch.tensor(x * 1.01, dtype=dtype)))
    assert math.isclose(exp_overflow_threshold(torch.float64), math.log(torch.finfo(torch.float64).max))
    with pytest.raises(ValueError, match="floating-point"):
        exp_overflow_threshold(torch.int32)
