"""kdtutor.kd.losses against torch.nn.functional, closed forms and autograd, plus every
gradient claim lessons 01–02 make, hypothesis properties and the error messages."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from kdtutor.kd import losses as L

N, C = 6, 10


def _logits(*shape, seed=0, scale=3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype) * scale


def _labels(n=N, c=C, seed=0):
    return torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(seed))


def _torch_kl(teacher, student, T):
    """Batch-mean KL(p_t ‖ q_s) the PyTorch way (the reference for kdtutor's)."""
    return F.kl_div(torch.log_softmax(student / T, dim=1), torch.log_softmax(teacher / T, dim=1),
                    reduction="batchmean", log_target=True)


def _grad(fn, z):
    z = z.detach().clone().requires_grad_(True)
    fn(z).backward()
    return z.grad


# --------------------------------------------------------------------------- against torch.nn.functional
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.3])
def test_cross_entropy_matches_torch(smoothing):
    s, y = _logits(N, C), _labels()
    torch.testing.assert_close(L.cross_entropy(s, y, label_smoothing=smoothing),
                               F.cross_entropy(s, y, label_smoothing=smoothing))


def test_cross_entropy_accepts_int32_labels_and_float32_logits():
    s, y = _logits(N, C, dtype=torch.float32), _labels()
    torch.testing.assert_close(L.cross_entropy(s, y.int()), F.cross_entropy(s, y))


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0])
def test_soft_cross_entropy_matches_torch_with_probability_targets(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    p = torch.softmax(t / T, dim=1)  # soft_cross_entropy takes the teacher's logits and softens them itself
    torch.testing.assert_close(L.soft_cross_entropy(s, t, T=T), F.cross_entropy(s / T, p))


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0, 20.0])
def test_kl_divergence_matches_torch_batchmean(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    torch.testing.assert_close(L.kl_divergence(s, t, T=T), _torch_kl(t, s, T))


def test_kl_divergence_argument_order_is_student_first_like_f_kl_div():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    forward, reverse = L.kl_divergence(s, t), L.kl_divergence(t, s)
    # F.kl_div(input = the student's log-probabilities, target = the teacher's): KL(teacher ‖ student)
    torch.testing.assert_close(forward, F.kl_div(F.log_softmax(s, 1), F.softmax(t, 1), reduction="batchmean"))
    torch.testing.assert_close(reverse, F.kl_div(F.log_softmax(t, 1), F.softmax(s, 1), reduction="batchmean"))
    assert abs(forward - reverse) > 1e-3  # KL is not symmetric, so the order matters


@pytest.mark.parametrize("T", [1.0, 4.0, 8.0])
def test_kd_loss_is_t_squared_times_kl(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    torch.testing.assert_close(L.kd_loss(s, t, T=T), T * T * _torch_kl(t, s, T))


def test_logit_mse_matches_torch():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    torch.testing.assert_close(L.logit_mse(s, t), F.mse_loss(s, t))


@pytest.mark.parametrize("T, alpha", [(1.0, 0.5), (4.0, 0.9), (2.0, 0.1)])
def test_distillation_loss_is_the_documented_combination(T, alpha):
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    want = (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * _torch_kl(t, s, T)
    torch.testing.assert_close(L.distillation_loss(s, t, y, T=T, alpha=alpha), want)


def test_distillation_loss_extremes_of_alpha():
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    torch.testing.assert_close(L.distillation_loss(s, t, y, T=4.0, alpha=0.0), F.cross_entropy(s, y))
    torch.testing.assert_close(L.distillation_loss(s, t, y, T=4.0, alpha=1.0), 16.0 * _torch_kl(t, s, 4.0))


def test_label_smoothing_applies_to_the_ce_term_only():
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    want = 0.5 * F.cross_entropy(s, y, label_smoothing=0.2) + 0.5 * 4.0 * _torch_kl(t, s, 2.0)
    torch.testing.assert_close(L.distillation_loss(s, t, y, T=2.0, alpha=0.5, label_smoothing=0.2), want)


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("T", [1.0, 3.0])
def test_soft_cross_entropy_is_entropy_plus_kl(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    p = torch.softmax(t / T, dim=1)
    H = torch.distributions.Categorical(probs=p).entropy().mean()
    torch.testing.assert_close(L.soft_cross_entropy(s, t, T=T), H + _torch_kl(t, s, T))
    torch.testing.assert_close(L.soft_cross_entropy(s, t, T=T), H + L.kl_divergence(s, t, T=T))


def test_kl_of_identical_logits_is_zero_and_ce_of_one_hot_is_minus_log_q():
    s = _logits(N, C)
    assert L.kl_divergence(s, s).item() == pytest.approx(0.0, abs=1e-12)
    y = _labels()
    want = -torch.log_softmax(s, dim=1)[torch.arange(N), y].mean()
    torch.testing.assert_close(L.cross_entropy(s, y), want)


def test_kl_of_two_point_distributions_closed_form():
    p, q = 0.8, 0.3
    t = torch.tensor([[math.log(p), math.log(1 - p)]], dtype=torch.float64)
    s = torch.tensor([[math.log(q), math.log(1 - q)]], dtype=torch.float64)
    want = p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))
    assert L.kl_divergence(s, t).item() == pytest.approx(want)


def test_losses_stay_finite_for_huge_logits():
    s = torch.tensor([[1e4, -1e4, 0.0], [-5e3, 5e3, 0.0]])
    t = torch.tensor([[-1e4, 1e4, 0.0], [5e3, -5e3, 1.0]])
    y = torch.tensor([0, 1])
    for v in (L.cross_entropy(s, y), L.kl_divergence(s, t), L.kd_loss(s, t, T=4.0),
              L.distillation_loss(s, t, y, T=4.0, alpha=0.5)):
        assert torch.isfinite(v), v
    torch.testing.assert_close(L.kl_divergence(s, t, T=4.0).double(), _torch_kl(t.double(), s.double(), 4.0),
                               rtol=1e-5, atol=1e-2)


# --------------------------------------------------------------------------- reduction pitfall
def test_reduction_mean_divides_batchmean_by_the_number_of_classes():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    logq, p = torch.log_softmax(s, dim=1), torch.softmax(t, dim=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyTorch warns about exactly this pitfall
        mean = F.kl_div(logq, p, reduction="mean")
    batchmean = F.kl_div(logq, p, reduction="batchmean")
    torch.testing.assert_close(mean, batchmean / C)
    ours = L.kl_divergence(s, t)
    torch.testing.assert_close(ours, batchmean)
    assert not torch.isclose(ours, mean)


# --------------------------------------------------------------------------- gradients (autograd)
@pytest.mark.parametrize("T", [1.0, 2.0, 8.0])
def test_kl_gradient_is_q_minus_p_over_t_per_example(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    p, q = torch.softmax(t / T, dim=1), torch.softmax(s / T, dim=1)
    grad = _grad(lambda z: L.kl_divergence(z, t, T=T), s)
    torch.testing.assert_close(grad, (q - p) / (T * N))  # batchmean divides by N
    grad_sum = _grad(lambda z: N * L.kl_divergence(z, t, T=T), s)
    torch.testing.assert_close(grad_sum, (q - p) / T)  # per example


@pytest.mark.parametrize("T", [1.0, 4.0, 16.0])
def test_kd_loss_gradient_is_t_times_q_minus_p_over_n(T):
    s, t = _logits(N, C), _logits(N, C, seed=1)
    p, q = torch.softmax(t / T, dim=1), torch.softmax(s / T, dim=1)
    torch.testing.assert_close(_grad(lambda z: L.kd_loss(z, t, T=T), s), T * (q - p) / N)


def test_distillation_loss_gradient():
    s, t, y = _logits(N, C), _logits(N, C, seed=1), _labels()
    T, a = 4.0, 0.7
    p, q, q1 = torch.softmax(t / T, 1), torch.softmax(s / T, 1), torch.softmax(s, 1)
    want = (1 - a) * (q1 - F.one_hot(y, C)) / N + a * T * (q - p) / N
    torch.testing.assert_close(_grad(lambda z: L.distillation_loss(z, t, y, T=T, alpha=a), s), want)


def _zero_mean(z):
    return z - z.mean(dim=1, keepdim=True)


def test_high_temperature_limit_is_logit_matching():
    s, t = _zero_mean(_logits(N, C, scale=1.0)), _zero_mean(_logits(N, C, seed=1, scale=1.0))
    T = 1000.0
    g_kd = _grad(lambda z: L.kd_loss(z, t, T=T), s)
    g_mse_half = _grad(lambda z: F.mse_loss(z, t) / 2, s)
    torch.testing.assert_close(g_mse_half, (s - t) / (C * N))  # the gradient of ‖z_s − z_t‖²/(2C), batch-mean
    assert (g_kd - g_mse_half).norm() / g_mse_half.norm() < 5e-3
    torch.testing.assert_close(g_kd, g_mse_half, rtol=0, atol=3e-4)  # entries are ~0.02-0.07
    assert L.kd_loss(s, t, T=T).item() == pytest.approx((L.logit_mse(s, t) / 2).item(), rel=1e-2)


def test_high_temperature_limit_approaches_one_monotonically():
    s, t = _zero_mean(_logits(N, C)), _zero_mean(_logits(N, C, seed=1))
    half_mse = (L.logit_mse(s, t) / 2).item()
    gaps = [abs(L.kd_loss(s, t, T=T).item() / half_mse - 1) for T in (10.0, 100.0, 1000.0)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-2, gaps


def test_high_temperature_limit_needs_zero_mean_logits():
    # KL ignores a constant shift of the student's logits, MSE does not
    s, t = _zero_mean(_logits(N, C)), _zero_mean(_logits(N, C, seed=1))
    shifted = s + 5.0
    assert L.kd_loss(shifted, t, T=1000.0).item() == pytest.approx(L.kd_loss(s, t, T=1000.0).item(), rel=1e-9)
    ratio = L.kd_loss(shifted, t, T=1000.0).item() / (L.logit_mse(shifted, t) / 2).item()
    assert ratio < 0.9


def test_without_t_squared_the_gradient_shrinks_like_one_over_t_squared():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    norms = {T: _grad(lambda z: L.kl_divergence(z, t, T=T), s).norm().item() for T in (50.0, 100.0, 200.0)}
    assert norms[50.0] / norms[100.0] == pytest.approx(4.0, rel=2e-2)
    assert norms[100.0] / norms[200.0] == pytest.approx(4.0, rel=1e-2)
    scaled = {T: _grad(lambda z: L.kd_loss(z, t, T=T), s).norm().item() for T in (100.0, 200.0)}
    assert scaled[100.0] / scaled[200.0] == pytest.approx(1.0, rel=1e-2)


# --------------------------------------------------------------------------- forward vs reverse KL (lesson 02)
def _two_bumps():
    x = torch.linspace(-6, 6, 61, dtype=torch.float64)
    two_bumps = torch.exp(-(x + 2.5) ** 2 / (2 * 0.7 ** 2)) + torch.exp(-(x - 2.5) ** 2 / (2 * 0.7 ** 2))
    return x, torch.log(two_bumps)[None]


def _local_minima(values):
    v = values.tolist()
    return [i for i in range(1, len(v) - 1) if v[i] < v[i - 1] and v[i] < v[i + 1]]


MUS = torch.linspace(-4, 4, 81, dtype=torch.float64)
SIGMAS = torch.exp(torch.linspace(math.log(0.3), math.log(6.0), 120, dtype=torch.float64))


def test_one_bump_logits_are_a_discretised_gaussian():
    x = torch.linspace(-3, 3, 13, dtype=torch.float64)
    q = torch.softmax(L.one_bump_logits(x, 0.5, 1.5), dim=1)[0]
    want = torch.distributions.Normal(0.5, 1.5).log_prob(x).exp()
    torch.testing.assert_close(q, want / want.sum())


def test_forward_kl_has_one_minimum_and_it_covers_both_bumps():
    x, teacher = _two_bumps()
    losses, sigmas = L.kl_landscape(teacher, x, MUS, SIGMAS, "forward")
    minima = _local_minima(losses)
    assert len(minima) == 1, [MUS[i].item() for i in minima]
    i = minima[0]
    assert abs(MUS[i].item()) < 0.05 and sigmas[i].item() > 2.0  # between the bumps, wide


def test_reverse_kl_is_lowest_on_one_bump_and_has_a_worse_covering_minimum():
    x, teacher = _two_bumps()
    losses, sigmas = L.kl_landscape(teacher, x, MUS, SIGMAS, "reverse")
    minima = _local_minima(losses)
    assert sorted(round(MUS[i].item(), 1) for i in minima) == [-2.5, 0.0, 2.5]
    best = int(losses.argmin())
    assert abs(abs(MUS[best].item()) - 2.5) < 0.05 and sigmas[best].item() < 1.0  # on one bump, narrow
    # on one of two equal, well-separated bumps, q = 2p there, so KL(q ‖ p) = log 2
    assert losses[best].item() == pytest.approx(math.log(2), abs=2e-3)
    centre = int((MUS.abs()).argmin())
    assert centre in minima and losses[centre] > losses[best] + 0.5  # covering both is a worse local minimum


def test_reverse_kl_fit_lands_where_it_starts_forward_kl_fit_does_not():
    x, teacher = _two_bumps()
    # forward: one minimum, reached from either start
    for mu0 in (0.0, 2.0):
        mu, sigma, _ = L.fit_one_bump(teacher, x, "forward", mu0=mu0)
        assert abs(mu) < 0.05 and sigma > 2.0, (mu0, mu, sigma)
    # reverse from μ0 = 0: by symmetry dKL/dμ = 0 there, so it can only widen: the covering minimum
    mu_c, sigma_c, loss_c = L.fit_one_bump(teacher, x, "reverse", mu0=0.0)
    assert abs(mu_c) < 1e-6 and sigma_c > 2.0
    # reverse from μ0 = 2: the right-hand bump, with a lower loss
    mu_b, sigma_b, loss_b = L.fit_one_bump(teacher, x, "reverse", mu0=2.0)
    assert abs(mu_b - 2.5) < 0.05 and sigma_b < 1.0
    assert loss_b < loss_c - 0.5


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_a_student_that_can_match_exactly_reaches_q_equals_p_in_either_direction(direction):
    x, teacher = _two_bumps()
    s = torch.zeros_like(teacher, requires_grad=True)  # one free logit per category
    opt = torch.optim.Adam([s], lr=0.1)
    for _ in range(1500):
        loss = L.kl_divergence(s, teacher) if direction == "forward" else L.kl_divergence(teacher, s)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.testing.assert_close(torch.softmax(s.detach(), 1), torch.softmax(teacher, 1), atol=2e-3, rtol=0)


def test_bad_direction_is_named():
    x, teacher = _two_bumps()
    with pytest.raises(ValueError, match="direction must be 'forward'"):
        L.fit_one_bump(teacher, x, "sideways")


# --------------------------------------------------------------------------- properties
_row = st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=8)


@st.composite
def _pair(draw):
    a = draw(_row)
    b = draw(st.lists(st.floats(-20, 20, allow_nan=False), min_size=len(a), max_size=len(a)))
    return torch.tensor([a], dtype=torch.float64), torch.tensor([b], dtype=torch.float64)


@settings(max_examples=100, deadline=None)
@given(pair=_pair(), T=st.floats(0.1, 20.0))
def test_kl_is_nonnegative_and_bounded_below_by_pinsker(pair, T):
    t, s = pair
    kl = L.kl_divergence(s, t, T=T).item()
    assert kl >= -1e-12
    p, q = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    l1 = (p - q).abs().sum().item()
    assert kl >= 0.5 * l1 ** 2 - 1e-9  # Pinsker: KL ≥ ½‖p − q‖₁², so distinct inputs give KL > 0


@settings(max_examples=100, deadline=None)
@given(pair=_pair())
def test_kl_is_zero_only_for_equal_distributions(pair):
    t, s = pair
    assert L.kl_divergence(t, t).item() == pytest.approx(0.0, abs=1e-12)
    p, q = torch.softmax(t, 1), torch.softmax(s, 1)
    assume((p - q).abs().max().item() > 1e-3)
    assert L.kl_divergence(s, t).item() > 0


@settings(max_examples=100, deadline=None)
@given(pair=_pair(), T=st.floats(0.2, 20.0), c_t=st.floats(-100, 100), c_s=st.floats(-100, 100))
def test_kl_and_kd_loss_ignore_a_constant_added_to_a_row(pair, T, c_t, c_s):
    t, s = pair
    torch.testing.assert_close(L.kl_divergence(s + c_s, t + c_t, T=T), L.kl_divergence(s, t, T=T),
                               atol=1e-9, rtol=1e-6)
    torch.testing.assert_close(L.kd_loss(s + c_s, t + c_t, T=T), L.kd_loss(s, t, T=T), atol=1e-9, rtol=1e-6)


def test_per_row_constants_may_differ_between_rows():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    shift = torch.arange(N, dtype=torch.float64)[:, None] * 7.0
    torch.testing.assert_close(L.kd_loss(s + shift, t - shift, T=3.0), L.kd_loss(s, t, T=3.0))


# --------------------------------------------------------------------------- errors
def test_different_class_counts_name_both():
    s, t = torch.zeros(8, 10), torch.zeros(8, 1000)
    for fn in (lambda: L.kd_loss(s, t, T=4.0), lambda: L.kl_divergence(s, t), lambda: L.logit_mse(s, t),
               lambda: L.soft_cross_entropy(s, t), lambda: L.probability_mse(s, t),
               lambda: L.distillation_loss(s, t, torch.zeros(8, dtype=torch.long))):
        with pytest.raises(ValueError, match=r"teacher has 1000 classes but student has 10"):
            fn()


def test_different_batch_sizes():
    with pytest.raises(ValueError, match=r"teacher logits are for 4 examples but student logits for 8"):
        L.kd_loss(torch.zeros(8, 10), torch.zeros(4, 10), T=2.0)


def test_logits_must_be_two_dimensional():
    with pytest.raises(ValueError, match=r"teacher_logits must be a tensor of shape \(N, C\), got \(8, 1, 10\)"):
        L.logit_mse(torch.zeros(8, 10), torch.zeros(8, 1, 10))


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), "a lot", None])
def test_alpha_outside_unit_interval(alpha):
    s, t, y = torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="alpha"):
        L.distillation_loss(s, t, y, alpha=alpha)


def test_teacher_logits_with_grad_raise():
    s = torch.zeros(2, 3, requires_grad=True)
    t = torch.zeros(2, 3, requires_grad=True)
    with pytest.raises(ValueError, match="teacher_logits require grad"):
        L.kd_loss(s, t, T=2.0)
    with pytest.raises(ValueError, match="torch.no_grad"):
        L.distillation_loss(s, t * 2, torch.zeros(2, dtype=torch.long))
    L.kd_loss(s, t.detach(), T=2.0)  # the fix works


@pytest.mark.parametrize("labels, match", [
    (torch.tensor([0, 10]), r"labels must lie in \[0, 10\).*from 0 to 10"),
    (torch.tensor([-1, 3]), r"labels must lie in \[0, 10\)"),
    (torch.tensor([0, 1, 2]), r"labels must have shape \(N,\) = \(2,\)"),
    (torch.tensor([[0], [1]]), r"labels must have shape \(N,\)"),
    (torch.tensor([0.0, 1.0]), "integer class indices"),
])
def test_bad_labels(labels, match):
    with pytest.raises(ValueError, match=match):
        L.cross_entropy(torch.zeros(2, 10), labels)


def test_soft_cross_entropy_takes_logits_and_checks_them():
    s, t = _logits(N, C), _logits(N, C, seed=1)
    with pytest.raises(ValueError, match="teacher has 5 classes but student has 10"):
        L.soft_cross_entropy(s, t[:, :5])
    bad = t.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        L.soft_cross_entropy(s, bad)


@pytest.mark.parametrize("eps", [-0.1, 1.0, float("nan")])
def test_bad_label_smoothing(eps):
    with pytest.raises(ValueError, match="label_smoothing"):
        L.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), label_smoothing=eps)


def test_nan_logits_raise_in_losses():
    s = torch.tensor([[0.0, float("nan")]])
    with pytest.raises(ValueError, match="NaN"):
        L.kd_loss(s, torch.zeros(1, 2), T=2.0)
    with pytest.raises(ValueError, match="NaN"):
        L.cross_entropy(s, torch.tensor([0]))


@pytest.mark.parametrize("T", [0.0, -2.0, float("inf")])
def test_bad_temperature_in_losses(T):
    with pytest.raises(ValueError, match="temperature T"):
        L.kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), T=T)
