"""kdtutor.kd.beyond: DKD, logit standardisation and the hint loss, each against an independent reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from kdtutor.kd import beyond, losses


def _logits(seed, n=8, c=10, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, c, generator=g, dtype=torch.float64),
            scale * torch.randn(n, c, generator=g, dtype=torch.float64),
            torch.randint(0, c, (n,), generator=g))


@pytest.mark.parametrize("T", [1.0, 2.0, 4.0])
def test_kd_is_tckd_plus_one_minus_pt_times_nckd_for_each_example(T):
    s, z, y = _logits(0)
    tckd, nckd, w = beyond.tckd_nckd(s, z, y, T)
    kd = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(z / T, 1), reduction="none", log_target=True).sum(1)
    assert torch.allclose(tckd + w * nckd, kd, atol=1e-12)
    assert torch.allclose(w, 1 - F.softmax(z / T, 1).gather(1, y[:, None]).squeeze(1))


def _mdistiller_dkd(logits_student, logits_teacher, target, alpha, beta, temperature):
    """mdistiller's dkd_loss, transcribed (gt_mask / other_mask, the −1000 trick, T², sum / N)."""
    gt_mask = torch.zeros_like(logits_student).scatter_(1, target.unsqueeze(1), 1).bool()
    other_mask = ~gt_mask
    pred_student = F.softmax(logits_student / temperature, dim=1)
    pred_teacher = F.softmax(logits_teacher / temperature, dim=1)

    def cat_mask(t):
        return torch.cat([(t * gt_mask).sum(1, keepdims=True), (t * other_mask).sum(1, keepdims=True)], dim=1)

    pred_student, pred_teacher = cat_mask(pred_student), cat_mask(pred_teacher)
    tckd = F.kl_div(torch.log(pred_student), pred_teacher, reduction="sum") * temperature ** 2 / target.shape[0]
    pt2 = F.softmax(logits_teacher / temperature - 1000.0 * gt_mask, dim=1)
    ls2 = F.log_softmax(logits_student / temperature - 1000.0 * gt_mask, dim=1)
    nckd = F.kl_div(ls2, pt2, reduction="sum") * temperature ** 2 / target.shape[0]
    return alpha * tckd + beta * nckd


@pytest.mark.parametrize("alpha,beta,T", [(1.0, 8.0, 4.0), (0.5, 2.0, 1.0), (2.0, 0.0, 2.0)])
def test_dkd_loss_matches_mdistillers_dkd_loss(alpha, beta, T):
    s, z, y = _logits(1)
    s.requires_grad_(True)
    got = beyond.dkd_loss(s, z, y, alpha, beta, T)
    want = _mdistiller_dkd(s, z, y, alpha, beta, T)
    assert torch.allclose(got, want, rtol=1e-8)
    g1, = torch.autograd.grad(got, s)
    g2, = torch.autograd.grad(_mdistiller_dkd(s, z, y, alpha, beta, T), s)
    assert torch.allclose(g1, g2, atol=1e-10)


def test_dkd_with_the_teachers_weight_is_kd():
    s, z, y = _logits(2)
    tckd, nckd, w = beyond.tckd_nckd(s, z, y, 4.0)
    assert torch.allclose(16 * (tckd + w * nckd).mean(), losses.kd_loss(s, z, 4.0))


def test_dkd_is_stable_for_a_certain_teacher():
    s, z, y = _logits(3)
    z = z.float() * 1000
    s = s.float()
    assert torch.isfinite(beyond.dkd_loss(s, z, y, 1.0, 8.0, 1.0))


def test_dkd_training_loss_adds_ce():
    s, z, y = _logits(4)
    want = F.cross_entropy(s, y) * 0.5 + beyond.dkd_loss(s, z, y, 1.0, 8.0, 4.0)
    assert torch.allclose(beyond.dkd_training_loss(s, z, y, ce_weight=0.5), want)


def test_dkd_rejects_bad_input():
    s, z, y = _logits(5)
    with pytest.raises(ValueError, match="beta"):
        beyond.dkd_loss(s, z, y, beta=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        beyond.dkd_loss(s, z, y, alpha=float("nan"))
    with pytest.raises(ValueError, match="labels"):
        beyond.dkd_loss(s, z, y[:3])
    with pytest.raises(ValueError, match="classes"):
        beyond.dkd_loss(s, z[:, :5], y)
    with pytest.raises(ValueError, match="3 classes"):
        beyond.dkd_loss(s[:, :2], z[:, :2], y % 2)
    with pytest.raises(ValueError, match="grad"):
        beyond.dkd_loss(s, z.clone().requires_grad_(True), y)
    with pytest.raises(ValueError, match="temperature|T"):
        beyond.dkd_loss(s, z, y, T=0.0)


def test_standardize_is_a_z_score_over_classes():
    s, _, _ = _logits(6, n=5, c=7)
    got = beyond.standardize_logits(s)
    mean, std = s.mean(1, keepdim=True), s.std(1, keepdim=True)
    assert torch.allclose(got, (s - mean) / (std + 1e-7))
    assert torch.allclose(got.mean(1), torch.zeros(5, dtype=s.dtype), atol=1e-12)
    assert torch.allclose(got.std(1), torch.ones(5, dtype=s.dtype), atol=1e-6)


def test_ls_kd_matches_the_reference_code():
    s, z, _ = _logits(7)

    def normalize(logit):  # sunshangquan/logit-standardization-KD, transcribed
        return (logit - logit.mean(dim=-1, keepdims=True)) / (1e-7 + logit.std(dim=-1, keepdims=True))

    T = 2.0
    want = F.kl_div(F.log_softmax(normalize(s) / T, 1), F.softmax(normalize(z) / T, 1), reduction="none").sum(1).mean() * T * T
    assert torch.allclose(beyond.ls_kd_loss(s, z, T), want)


@pytest.mark.parametrize("side", ["student", "teacher"])
def test_ls_kd_is_invariant_to_shifting_and_scaling_either_side(side):
    s, z, _ = _logits(8)
    base = beyond.ls_kd_loss(s, z, 2.0)
    for shift, scale in [(5.0, 1.0), (-3.0, 1.0), (0.0, 4.0), (0.0, 0.25), (7.0, 3.0)]:
        s2, z2 = (s * scale + shift, z) if side == "student" else (s, z * scale + shift)
        assert torch.allclose(beyond.ls_kd_loss(s2, z2, 2.0), base, rtol=1e-6)
    # plain KD is not: a scaled teacher changes it
    assert not torch.allclose(losses.kd_loss(s, z * 4, 2.0), losses.kd_loss(s, z, 2.0))


def test_standardize_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        beyond.standardize_logits(torch.zeros(3))
    with pytest.raises(ValueError, match="2 classes"):
        beyond.standardize_logits(torch.zeros(3, 1))
    with pytest.raises(ValueError, match="grad"):
        beyond.ls_kd_loss(torch.zeros(2, 3), torch.zeros(2, 3, requires_grad=True))


def test_hint_loss_is_mse_and_checks_shapes():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    assert torch.allclose(beyond.hint_loss(a, b), ((a - b) ** 2).sum() / a.numel())
    with pytest.raises(ValueError, match="differ in shape"):
        beyond.hint_loss(a, b[:, :2])
    with pytest.raises(ValueError, match="grad"):
        beyond.hint_loss(a, b.requires_grad_(True))
    with pytest.raises(ValueError, match="shape"):
        beyond.hint_loss(torch.zeros(3), torch.zeros(3))


def test_non_target_entropy_against_scipy_and_its_extremes():
    from scipy.stats import entropy
    g = torch.Generator().manual_seed(3)
    z, y = 2 * torch.randn(5, 10, generator=g, dtype=torch.float64), torch.tensor([0, 3, 5, 9, 1])
    got = beyond.non_target_entropy(z, y, T=2.0)
    for i in range(5):
        others = [c for c in range(10) if c != int(y[i])]
        p = torch.softmax(z[i, others] / 2.0, 0).numpy()
        assert float(got[i]) == pytest.approx(entropy(p) / math.log(9), rel=1e-9)
    flat = torch.zeros(2, 10, dtype=torch.float64)
    flat[:, 0] = 8.0  # the target stands out, the other nine are equal: uniform among them
    assert torch.allclose(beyond.non_target_entropy(flat, torch.tensor([0, 0])), torch.ones(2, dtype=torch.float64))
    peaked = torch.zeros(1, 10, dtype=torch.float64)
    peaked[0, 4] = 80.0
    assert float(beyond.non_target_entropy(peaked, torch.tensor([0]))) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="C ≥ 3"):
        beyond.non_target_entropy(torch.zeros(2, 2), torch.tensor([0, 1]))
