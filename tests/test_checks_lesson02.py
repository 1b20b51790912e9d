"""Lesson 02's checks: each reference answer passes, a stub is 'not attempted' (and falls back
to kdtutor's reference), and typical wrong answers fail with a specific message."""

import pytest
import torch
import torch.nn.functional as F

import solutions.lesson02 as S
from kdtutor import checks

# the wrong answers below use reduction="mean" on purpose; PyTorch warns about it
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides:UserWarning")

NAMES = ["kl_batchmean", "combined_kd_loss", "kd_term"]


def test_fallbacks_compute_the_right_thing():
    def stub(*args, **kwargs):
        raise NotImplementedError

    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    y = torch.tensor([0, 3, 1])
    ref_kl = F.kl_div(F.log_softmax(s / 2, 1), F.log_softmax(t / 2, 1), reduction="batchmean", log_target=True)
    torch.testing.assert_close(checks.kl_batchmean(stub, verbose=False).fn(s, t, 2.0), ref_kl)
    torch.testing.assert_close(checks.kd_term(stub, verbose=False).fn(s, t, 2.0), 4 * ref_kl)
    torch.testing.assert_close(checks.combined_kd_loss(stub, verbose=False).fn(s, t, y, 2.0, 0.25),
                               0.75 * F.cross_entropy(s, y) + 0.25 * 4 * ref_kl)


def _fails(check, fn, *fragments):
    r = check(fn, verbose=False)
    assert r.passed is False, r.message
    for fragment in fragments:
        assert fragment in r.message, r.message
    assert "Hint:" in r.message


def _kl(student, teacher, T, reduction="batchmean"):
    """KL(softmax(teacher/T) ‖ softmax(student/T)) by torch.nn.functional: the student first, like F.kl_div."""
    return F.kl_div(F.log_softmax(student / T, 1), F.log_softmax(teacher / T, 1), reduction=reduction,
                    log_target=True)


def _soft_ce(s, t, T):
    return -(F.softmax(t / T, 1) * F.log_softmax(s / T, 1)).sum(1).mean()


# --------------------------------------------------------------------------- kl_batchmean
def test_reversed_kl_fails():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _kl(t, s, T), "reverse KL", "did you swap them")


def test_the_old_teacher_first_order_is_caught_as_the_reverse_kl():
    from solutions.lesson02 import kl_batchmean

    _fails(checks.kl_batchmean, lambda s, t, T=1.0: kl_batchmean(t, s, T), "reverse KL")


def test_reduction_mean_fails():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _kl(s, t, T, reduction="mean"), "averaged over the classes")


def test_summing_over_the_batch_fails():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _kl(s, t, T, reduction="sum"), "summed over the batch")


def test_forgetting_the_temperature_fails():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _kl(s, t, 1.0), "temperature is missing")


def test_log_of_probabilities_fails_on_large_logits():
    def naive(s, t, T=1.0):
        p, q = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
        return (p * (torch.log(p) - torch.log(q))).sum(1).mean()

    _fails(checks.kl_batchmean, naive, "large logits", "log_softmax instead")


def test_t_squared_in_kl_batchmean_fails_with_a_targeted_hint():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: T * T * _kl(s, t, T), "multiplied by T²")


def test_soft_cross_entropy_instead_of_kl_fails():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _soft_ce(s, t, T), "soft cross-entropy", "H(p) + KL")


def test_detached_kl_fails_the_gradient_case():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: _kl(s.detach(), t, T), "not connected to student_logits")


def test_kl_rebuilt_from_item_fails_the_gradient_case():
    _fails(checks.kl_batchmean, lambda s, t, T=1.0: torch.tensor(_kl(s, t, T).item()),
           "not connected to student_logits")


# --------------------------------------------------------------------------- kd_term
def test_missing_t_squared_fails():
    _fails(checks.kd_term, lambda s, t, T: _kl(s, t, T), "T² factor is missing")


def test_probabilities_fed_to_kl_div_fail():
    def buggy(s, t, T):
        return F.kl_div(F.softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean") * T * T

    _fails(checks.kd_term, buggy, "log-probabilities")


def test_reduction_mean_in_kd_term_fails():
    _fails(checks.kd_term, lambda s, t, T: _kl(s, t, T, reduction="mean") * T * T, "averaged over the classes")


def test_swapped_arguments_in_kd_term_fail():
    _fails(checks.kd_term, lambda s, t, T: _kl(t, s, T) * T * T, "reverse KL")


def test_detached_result_fails_the_gradient_case():
    _fails(checks.kd_term, lambda s, t, T: S.kd_term(s.detach(), t, T), "not connected to student_logits")


def test_returning_a_float_fails():
    _fails(checks.kd_term, lambda s, t, T: S.kd_term(s, t, T).item(), "expected a torch.Tensor")


def test_pytorch_tutorial_form_of_kd_term_fails_with_a_targeted_hint():
    def tutorial(s, t, T):
        soft_targets = F.softmax(t / T, dim=-1)
        soft_prob = F.log_softmax(s / T, dim=-1)
        return -torch.sum(soft_targets * soft_prob) / soft_prob.size()[0] * (T ** 2)

    _fails(checks.kd_term, tutorial, "PyTorch KD tutorial", "T²·H(p)")


def test_older_tutorial_form_with_log_of_probabilities_gives_nan_and_says_why():
    def older(s, t, T):
        soft_targets = F.softmax(t / T, dim=-1)
        soft_prob = F.log_softmax(s / T, dim=-1)
        return torch.sum(soft_targets * (soft_targets.log() - soft_prob)) / soft_prob.size()[0] * (T ** 2)

    _fails(checks.kd_term, older, "large logits", "log_softmax instead")


# --------------------------------------------------------------------------- combined_kd_loss
def test_torchdistill_alpha_convention_fails():
    def swapped(s, t, y, T=4.0, alpha=0.9):
        return alpha * F.cross_entropy(s, y) + (1 - alpha) * T * T * _kl(s, t, T)

    _fails(checks.combined_kd_loss, swapped, "weighs the cross-entropy")


def test_combined_without_t_squared_fails():
    def no_t2(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * _kl(s, t, T)

    _fails(checks.combined_kd_loss, no_t2, "T² factor")


def test_softened_cross_entropy_fails():
    def soft_ce(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s / T, y) + alpha * T * T * _kl(s, t, T)

    _fails(checks.combined_kd_loss, soft_ce, "ordinary logits")


def test_combined_with_reduction_mean_fails():
    def mean_kl(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * _kl(s, t, T, reduction="mean")

    _fails(checks.combined_kd_loss, mean_kl, "divided by C")


def test_combined_with_soft_cross_entropy_fails():
    def tutorial_like(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * _soft_ce(s, t, T)

    _fails(checks.combined_kd_loss, tutorial_like, "soft cross-entropy", "α·T²·H(p)")


def test_detached_combined_loss_fails():
    def detached(s, t, y, T=4.0, alpha=0.9):
        return S.combined_kd_loss(s, t, y, T=T, alpha=alpha).detach()

    _fails(checks.combined_kd_loss, detached, "not connected to student_logits")


def test_combined_loss_rebuilt_from_item_fails():
    def from_item(s, t, y, T=4.0, alpha=0.9):
        return torch.tensor(S.combined_kd_loss(s, t, y, T=T, alpha=alpha).item(), requires_grad=True)

    _fails(checks.combined_kd_loss, from_item, "not connected to student_logits")


def test_teacher_first_combined_loss_fails():
    def swapped(s, t, y, T=4.0, alpha=0.9):
        return (1 - alpha) * F.cross_entropy(s, y) + alpha * T * T * _kl(t, s, T)

    _fails(checks.combined_kd_loss, swapped, "KL is reversed")


# --------------------------------------------------------------------------- issue 35: each answer and its message
def _by_torch_distributions(s, t, T=1.0):
    """Right in exact arithmetic, but torch.distributions makes a term inf wherever the student's probability
    underflows to 0 (at ±1000 logits), although its log-probability is finite."""
    from torch.distributions import Categorical, kl_divergence

    return kl_divergence(Categorical(logits=t / T), Categorical(logits=s / T)).mean()


# refused on purpose (its value is inf where the KL is finite): the message must name the real cause
WRONG = {
    "kl_batchmean via torch.distributions": (checks.kl_batchmean, _by_torch_distributions,
                                             ["got inf", "torch.distributions", "underflowed to exactly 0"]),
}


@pytest.mark.parametrize("name", WRONG)
def test_issue35_wrong_answer_fails_naming_its_mistake(name):
    check, answer, fragments = WRONG[name]
    _fails(check, answer, *fragments)
    assert "multiplied by 0" not in check(answer, verbose=False).message  # it wrote no log(0)·0


def test_torch_distributions_is_right_where_nothing_underflows():
    s, t = torch.randn(4, 5), torch.randn(4, 5)
    torch.testing.assert_close(_by_torch_distributions(s, t, 2.0), _kl(s, t, 2.0))


def test_the_tutorial_is_named_by_its_earlier_revisions():
    from kdtutor.checks import lesson02
    from kdtutor.kd import losses

    for text in (lesson02.TUTORIAL_WHY, losses.soft_cross_entropy.__doc__):
        assert "earlier revisions of the PyTorch KD tutorial" in " ".join(text.split())
    r = checks.combined_kd_loss(lambda s, t, y, T=4.0, alpha=0.9: (1 - alpha) * F.cross_entropy(s, y)
                                + alpha * T * T * _soft_ce(s, t, T), verbose=False)
    assert "earlier revisions of the PyTorch KD tutorial" in r.message
