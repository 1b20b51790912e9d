"""Lesson 07's token-level losses and top-k targets, against independent references:
F.kl_div, the definition of the generalised JSD written out with NumPy, closed-form gradients
checked with autograd, and limits that only the right convention satisfies."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdtutor.lm import distill as D


def _pair(shape=(2, 3, 7), seed=0, scale=2.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    draw = lambda: scale * torch.randn(*shape, generator=g, dtype=dtype)  # noqa: E731
    return draw(), draw()


def _positions(shape):
    return math.prod(shape[:-1])


# --------------------------------------------------------------------------- forward / reverse KL
@pytest.mark.parametrize("T", [1.0, 2.0, 0.5])
def test_forward_kl_is_f_kl_div_summed_over_the_vocabulary_averaged_over_positions(T):
    s, t = _pair()
    want = F.kl_div(F.log_softmax(s / T, -1), F.log_softmax(t / T, -1), reduction="sum", log_target=True)
    torch.testing.assert_close(D.forward_kl(s, t, T=T), want / _positions(s.shape), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(D.token_kd_loss(s, t, T=T), T * T * want / _positions(s.shape), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T", [1.0, 3.0])
def test_reverse_kl_swaps_the_roles(T):
    s, t = _pair(seed=1)
    want = F.kl_div(F.log_softmax(t / T, -1), F.log_softmax(s / T, -1), reduction="sum", log_target=True)
    torch.testing.assert_close(D.reverse_kl(s, t, T=T), want / _positions(s.shape), rtol=1e-12, atol=1e-12)
    assert not torch.isclose(D.reverse_kl(s, t, T=T), D.forward_kl(s, t, T=T))  # KL is not symmetric


def test_forward_kl_gradient_is_q_minus_p_over_T_per_position():
    s, t = _pair(seed=2)
    T = 2.0
    s.requires_grad_(True)
    D.forward_kl(s, t, T=T).backward()
    q, p = torch.softmax(s.detach() / T, -1), torch.softmax(t / T, -1)
    torch.testing.assert_close(s.grad, (q - p) / (T * _positions(s.shape)))


def test_reverse_kl_gradient_matches_its_closed_form():
    s, t = _pair(seed=3)
    T = 1.5
    s.requires_grad_(True)
    D.reverse_kl(s, t, T=T).backward()
    log_q, log_p = F.log_softmax(s.detach() / T, -1), F.log_softmax(t / T, -1)
    q = log_q.exp()
    kl = (q * (log_q - log_p)).sum(-1, keepdim=True)
    torch.testing.assert_close(s.grad, q * (log_q - log_p - kl) / (T * _positions(s.shape)))


def test_zero_when_student_equals_teacher_and_positive_otherwise():
    s, t = _pair(seed=4)
    for beta in (0.0, 0.3, 1.0):
        assert D.generalized_jsd(t.clone(), t, beta).abs() < 1e-12
        assert D.generalized_jsd(s, t, beta) > 0


# --------------------------------------------------------------------------- generalised JSD
def _jsd_numpy(s, t, beta, T=1.0):
    """The definition, position by position: m = β·p + (1 − β)·q, β·KL(p‖m) + (1 − β)·KL(q‖m) (no T²)."""
    def softmax(z):
        e = np.exp(z - z.max(-1, keepdims=True))
        return e / e.sum(-1, keepdims=True)
    p, q = softmax(t.numpy() / T), softmax(s.numpy() / T)
    m = beta * p + (1 - beta) * q
    per = beta * (p * np.log(p / m)).sum(-1) + (1 - beta) * (q * np.log(q / m)).sum(-1)
    return per.mean()


@pytest.mark.parametrize("beta", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_jsd_matches_its_definition(beta, T):
    s, t = _pair(seed=5)
    assert D.generalized_jsd(s, t, beta, T=T).item() == pytest.approx(_jsd_numpy(s, t, beta, T), rel=1e-10)


def test_jsd_ends_are_forward_and_reverse_kl_as_in_trl():
    s, t = _pair(seed=6)
    assert D.generalized_jsd(s, t, 0.0) == D.forward_kl(s, t)
    assert D.generalized_jsd(s, t, 1.0) == D.reverse_kl(s, t)
    # …and the interior tends to them, scaled: JSD_β/β → KL(p‖q) as β → 0, JSD_β/(1−β) → KL(q‖p) as β → 1
    b = 1e-6
    assert (D.generalized_jsd(s, t, b) / b).item() == pytest.approx(D.forward_kl(s, t).item(), rel=1e-4)
    assert (D.generalized_jsd(s, t, 1 - b) / b).item() == pytest.approx(D.reverse_kl(s, t).item(), rel=1e-4)


def test_jsd_symmetries_and_bound():
    s, t = _pair(seed=7)
    torch.testing.assert_close(D.generalized_jsd(s, t, 0.5), D.generalized_jsd(t, s, 0.5))
    torch.testing.assert_close(D.generalized_jsd(s, t, 0.2), D.generalized_jsd(t, s, 0.8))
    far_s, far_t = torch.tensor([[40.0, 0, 0]]), torch.tensor([[0, 0, 40.0]])  # nearly disjoint
    beta = 0.3
    entropy = -(beta * math.log(beta) + (1 - beta) * math.log(1 - beta))
    assert D.generalized_jsd(far_s, far_t, beta).item() == pytest.approx(entropy, rel=1e-4)
    assert D.generalized_jsd(s, t, beta).item() < entropy


def test_jsd_gradient_matches_finite_differences():
    s, t = _pair(shape=(1, 2, 5), seed=8)
    s.requires_grad_(True)
    torch.autograd.gradcheck(lambda z: D.generalized_jsd(z, t, 0.4, T=1.7), (s,))


# --------------------------------------------------------------------------- masks and the combined loss
def test_mask_counts_only_the_selected_positions_and_padding_cannot_leak():
    s, t = _pair(shape=(2, 4, 6), seed=9)
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    want = D.forward_kl(s[mask][None], t[mask][None])
    s_pad, t_pad = s.clone(), t.clone()
    s_pad[~mask], t_pad[~mask] = float("nan"), float("inf")  # garbage at padded positions
    for beta in (0.0, 0.5, 1.0):
        got = D.generalized_jsd(s_pad, t_pad, beta, mask=mask)
        torch.testing.assert_close(got, D.generalized_jsd(s[mask][None], t[mask][None], beta))
    torch.testing.assert_close(D.forward_kl(s, t, mask), want)
    s.requires_grad_(True)
    D.reverse_kl(s, t, mask).backward()
    assert torch.all(s.grad[~mask] == 0) and torch.isfinite(s.grad).all()


def test_masked_mean_selects_rather_than_multiplies():
    v = torch.tensor([[1.0, 2.0, float("inf")], [3.0, float("nan"), 5.0]])
    m = torch.tensor([[True, True, False], [True, False, True]])
    assert D.masked_mean(v, m).item() == pytest.approx((1 + 2 + 3 + 5) / 4)
    assert D.masked_mean(torch.ones(2, 3)).item() == 1.0


def test_token_kd_loss_follows_the_alpha_convention():
    s, t = _pair(seed=10)
    y = torch.randint(0, 7, s.shape[:-1], generator=torch.Generator().manual_seed(0))
    ce = F.cross_entropy(s.flatten(0, 1), y.flatten())
    torch.testing.assert_close(D.token_kd_loss(s, t, y, "reverse", alpha=0.0), ce)
    torch.testing.assert_close(D.token_kd_loss(s, t, None, "reverse", T=2.0), 4.0 * D.reverse_kl(s, t, T=2.0))
    torch.testing.assert_close(D.token_kd_loss(s, t, y, "jsd", beta=0.3, T=2.0, alpha=0.25),
                               0.75 * ce + 0.25 * 4.0 * D.generalized_jsd(s, t, 0.3, T=2.0))


def test_token_kd_loss_is_the_image_lessons_loss_on_the_counted_positions():
    """One loss for images and tokens: (B, L, V) with a mask equals the (N, C) image loss on the
    flattened counted positions, for the same alpha convention and T."""
    from kdtutor.kd.losses import distillation_loss

    s, t = _pair(shape=(3, 5, 7), seed=20)
    y = torch.randint(0, 7, (3, 5), generator=torch.Generator().manual_seed(1))
    mask = torch.rand(3, 5, generator=torch.Generator().manual_seed(2)) < 0.6
    for alpha, T in [(1.0, 1.0), (0.7, 2.0), (0.0, 3.0)]:
        token = D.token_kd_loss(s, t, y, "forward", T=T, alpha=alpha, mask=mask)
        image = distillation_loss(s[mask], t[mask], y[mask], T=T, alpha=alpha)
        torch.testing.assert_close(token, image, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(D.token_kd_loss(s, t, T=2.0), distillation_loss(s.flatten(0, 1), t.flatten(0, 1), None,
                                                                                T=2.0, alpha=1.0))


def test_a_nan_at_a_padded_position_reaches_neither_the_loss_nor_its_gradient():
    s, t = _pair(shape=(2, 4, 5), seed=21)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    s[~mask], t[~mask] = float("nan"), float("inf")
    s.requires_grad_(True)
    loss = D.token_kd_loss(s, t, T=2.0, mask=mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all() and (s.grad[~mask] == 0).all()


@pytest.mark.parametrize("call,match", [
    (lambda s, t: D.forward_kl(s, t[..., :-1]), "same shape"),
    (lambda s, t: D.forward_kl(s.long(), t), "float tensor"),
    (lambda s, t: D.forward_kl(s[..., :1], t[..., :1]), "V ≥ 2"),
    (lambda s, t: D.forward_kl(s, t, T=0.0), "temperature"),
    (lambda s, t: D.forward_kl(s, t, T=float("nan")), "temperature"),
    (lambda s, t: D.generalized_jsd(s, t, beta=1.5), "beta"),
    (lambda s, t: D.forward_kl(s, t, mask=torch.ones(2, 3)), "bool"),
    (lambda s, t: D.forward_kl(s, t, mask=torch.ones(3, 2, dtype=torch.bool)), "shape"),
    (lambda s, t: D.forward_kl(s, t, mask=torch.zeros(2, 3, dtype=torch.bool)), "no position"),
    (lambda s, t: D.token_kd_loss(s, t, None, alpha=0.5), "targets"),
    (lambda s, t: D.token_kd_loss(s, t, divergence="backward"), "divergence"),
    (lambda s, t: D.topk_from_logits(t, 0), "k must"),
    (lambda s, t: D.topk_from_logits(t, 8), "k must"),
    (lambda s, t: D.topk_kd_loss(s, D.topk_from_logits(t, 3), rest="drop"), "rest"),
    (lambda s, t: D.topk_kd_loss(s[:1], D.topk_from_logits(t, 3)), "do not fit"),
    (lambda s, t: D.prompt_mask(2, 5, 0), "prompt_len"),
])
def test_bad_inputs_raise_value_error(call, match):
    s, t = _pair()
    with pytest.raises(ValueError, match=match):
        call(s, t)


# --------------------------------------------------------------------------- top-k
@pytest.mark.parametrize("rest", ["bucket", "renormalize"])
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_k_equal_to_the_vocabulary_reproduces_the_full_loss(rest, T):
    s, t = _pair(shape=(3, 5, 11), seed=11)
    got = D.topk_kd_loss(s, D.topk_from_logits(t, 11, T), rest=rest)
    torch.testing.assert_close(got, D.token_kd_loss(s, t, T=T), rtol=1e-13, atol=1e-13)
    s32, t32 = s.float(), t.float()
    got32 = D.topk_kd_loss(s32, D.topk_from_logits(t32, 11, T), rest=rest)
    torch.testing.assert_close(got32, D.token_kd_loss(s32, t32, T=T))


def test_bucket_never_exceeds_the_full_kl_and_is_exact_with_one_character_left():
    s, t = _pair(shape=(4, 6, 9), seed=12)
    full = D.forward_kl(s, t)
    losses = [D.topk_kd_loss(s, D.topk_from_logits(t, k)).item() for k in range(1, 10)]
    assert all(x <= full.item() + 1e-12 for x in losses)
    assert losses[-2] == pytest.approx(full.item(), rel=1e-12)  # k = V − 1: the bucket is one character


def test_topk_contents_rest_mass_and_the_renormalised_reference():
    s, t = _pair(shape=(2, 3, 10), seed=13)
    k, T = 4, 1.5
    top = D.topk_from_logits(t, k, T)
    p = torch.softmax(t / T, -1)
    vals, idx = p.topk(k, -1)
    torch.testing.assert_close(top.logprobs.exp(), vals)
    assert torch.equal(top.indices.long(), idx) and top.indices.dtype == torch.uint8
    torch.testing.assert_close(top.rest.exp(), 1 - vals.sum(-1))
    # renormalised: Σ p̃ (log p̃ − log q) with p̃ the renormalised top-k, q the student's full softmax
    p_tilde = vals / vals.sum(-1, keepdim=True)
    log_q = F.log_softmax(s / T, -1).gather(-1, idx)
    want = T * T * (p_tilde * (p_tilde.log() - log_q)).sum(-1).mean()
    torch.testing.assert_close(D.topk_kd_loss(s, top, rest="renormalize"), want)
    # the bucket: the same KL over k + 1 outcomes, written out
    q = torch.softmax(s / T, -1)
    q_k = q.gather(-1, idx)
    P, Q = torch.cat([vals, 1 - vals.sum(-1, keepdim=True)], -1), torch.cat([q_k, 1 - q_k.sum(-1, keepdim=True)], -1)
    torch.testing.assert_close(D.topk_kd_loss(s, top), T * T * (P * (P / Q).log()).sum(-1).mean())


def test_topk_storage_is_measured_against_full_logits():
    t = torch.randn(5, 7, 65)
    top = D.topk_from_logits(t, 8)
    assert top.nbytes() == 5 * 7 * (8 * 4 + 8 * 1 + 4)  # float32 values, uint8 indices, one float32 rest
    assert top.full_nbytes() == 5 * 7 * 65 * 4
    assert D.topk_from_logits(torch.randn(2, 300), 3).indices.dtype == torch.int16


def test_topk_mask_and_indexing():
    s, t = _pair(shape=(2, 4, 6), seed=14)
    mask = torch.tensor([[True, False, True, True], [False, False, True, False]])
    top = D.topk_from_logits(t, 3)
    torch.testing.assert_close(D.topk_kd_loss(s, top, mask), D.topk_kd_loss(s[mask], top[mask]))


# --------------------------------------------------------------------------- prompts and on-policy data
def test_prompt_mask_leaves_out_the_positions_that_predict_the_prompt():
    m = D.prompt_mask(2, 6, 3)
    assert m.tolist() == [[False, False, True, True, True, True]] * 2
    assert D.prompt_mask(1, 4, 1).all()


def test_on_policy_batch_keeps_the_prompt_and_masks_it():
    from kdtutor.lm.model import LMConfig, build_lm

    model = build_lm(LMConfig(9, 8, 1, 1, 8), seed=0)
    fixed = torch.randint(0, 9, (3, 9), generator=torch.Generator().manual_seed(1))
    seq, mask = D.on_policy_batch(model, fixed, 4, generator=torch.Generator().manual_seed(2))
    assert seq.shape == fixed.shape and torch.equal(seq[:, :4], fixed[:, :4])
    assert torch.equal(mask, D.prompt_mask(3, 8, 4))
    assert model.training  # generate() restores the mode it found


def test_masking_the_value_is_not_masking_the_gradient():
    """−log p with p = 0 at a padded position: multiplying by the mask or ``torch.where`` on the
    *result* gives the right value (where) but a NaN gradient; selecting the *inputs* before the
    log gives the gradient of the loss over the real positions alone (autograd on those as reference)."""
    p0 = torch.tensor([[0.5, 0.25, 0.0], [0.125, 0.0, 0.0]], dtype=torch.float64)
    mask = p0 > 0

    def grad(loss_of):
        p = p0.clone().requires_grad_(True)
        loss_of(p).backward()
        return p.grad

    by_multiplying = grad(lambda p: (-p.log() * mask).sum() / mask.sum())
    by_where_after = grad(lambda p: D.masked_mean(-p.log(), mask))
    by_selecting_first = grad(lambda p: D.masked_mean(-torch.where(mask, p, torch.ones_like(p)).log(), mask))
    reference = grad(lambda p: -p[mask].log().mean())
    assert by_multiplying[~mask].isnan().all() and by_where_after[~mask].isnan().all()
    assert torch.isfinite(by_selecting_first).all() and (by_selecting_first[~mask] == 0).all()
    torch.testing.assert_close(by_selecting_first, reference)
    torch.testing.assert_close(D.masked_mean(-p0.log(), mask), -p0[mask].log().mean())  # the value is right
