"""Hidden tests of homework 1 (lessons 01–04). INSTRUCTORS ONLY: never shipped to learners.

Each test takes the notebook's namespace ``ns`` and the learner's variant ``v``
(``homework/hwtools.py:variant("hw1", roster id)``) and raises ``Failed`` on a wrong answer.
The references are written independently of the model answers (``hw1_solution.py``), with
``torch.nn.functional``'s own cross-entropy (label smoothing) and KL divergence.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from coursetools.homework import Failed, Problem, call, expect_close, function, number


def reference_weighted_kd(s, t, y, v, t_squared=True):
    """(1/N)·Σ_i [(1−α)·CE_ε(y_i, s_i) + α·p_t(y_i)·T²·KL(p_t^T ‖ p_s^T)_i], float64."""
    T, alpha, eps = v["T"], v["alpha"], v["eps"]
    s, t = s.double(), t.double()
    trust = F.softmax(t, dim=1).gather(1, y[:, None])[:, 0]
    kl = F.kl_div(F.log_softmax(s / T, 1), F.log_softmax(t / T, 1), log_target=True, reduction="none").sum(1)
    ce = F.cross_entropy(s, y, label_smoothing=eps, reduction="none")
    return ((1 - alpha) * ce + alpha * trust * (T ** 2 if t_squared else 1) * kl).mean()


def reference_skew_kl(s, t, v):
    """T²·mean_i KL(p_t^T ‖ λ·p_t^T + (1−λ)·p_s^T), float64."""
    T, lam = v["T"], v["lam"]
    pt, ps = F.softmax(t.double() / T, 1), F.softmax(s.double() / T, 1)
    return T ** 2 * F.kl_div((lam * pt + (1 - lam) * ps).log(), pt, reduction="batchmean")


def _cases(v, n=7, c=5):
    g = torch.Generator().manual_seed(v["run_seed"])
    s, t = 2 * torch.randn(n, c, generator=g, dtype=torch.float64), 3 * torch.randn(n, c, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (n,), generator=g)
    return [("float64", s, t, y), ("float32", s.float(), t.float(), y)]


def _scalar(got, what):
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        raise Failed(f"{what} must return a scalar tensor, got {type(got).__name__}"
                     + (f" of shape {tuple(got.shape)}" if isinstance(got, torch.Tensor) else ""))
    if not torch.isfinite(got).all():
        raise Failed(f"{what} returned {got.item()} (not finite)")
    return got


def _loss_test(name, fn_args, reference, mistakes):
    """Value (float64 and float32 cases) and gradient w.r.t. the student's logits against ``reference``."""
    def test(ns, v):
        fn = function(ns, name)
        for dtype, s, t, y in _cases(v):
            s_in = s.clone().requires_grad_(True)
            got = _scalar(call(fn, *fn_args(s_in, t.clone(), y.clone())), name)
            want = reference(s, t, y, v)
            tol = 1e-9 if dtype == "float64" else 1e-4
            if not abs(got.item() - want.item()) <= tol * (1 + abs(want.item())):
                seen = [why for why, wrong in mistakes if abs(got.item() - wrong(s, t, y, v).item()) <= 1e-4 * (1 + abs(want.item()))]
                raise Failed(f"{name} on a {dtype} case of your variant (T = {v['T']}, α = {v['alpha']}"
                             + (f", ε = {v['eps']}" if "eps" in v else "") + f"): got {got.item():.6f}, "
                             f"expected {want.item():.6f}" + (f" — looks like {seen[0]}" if seen else ""))
            if not got.requires_grad:
                raise Failed(f"{name} gives no gradient to the student's logits (a .detach(), .item() or numpy inside?)")
            (grad,) = torch.autograd.grad(got, s_in)
            s_ref = s.double().clone().requires_grad_(True)
            (want_grad,) = torch.autograd.grad(reference(s_ref, t, y, v), s_ref)
            if not torch.allclose(grad.double(), want_grad, atol=1e-4, rtol=1e-3):
                raise Failed(f"{name}'s gradient w.r.t. the student's logits is wrong on a {dtype} case "
                             "(its value is right: a term computed on detached logits?)")
    return test


def _variant_with(**changes):
    return lambda s, t, y, v: reference_weighted_kd(s, t, y, {**v, **changes})


WEIGHTED_MISTAKES = [
    ("the T² factor is missing", lambda s, t, y, v: reference_weighted_kd(s, t, y, v, t_squared=False)),
    ("the hard term has no label smoothing", _variant_with(eps=0.0)),
    ("α weighs the wrong term", lambda s, t, y, v: reference_weighted_kd(s, t, y, {**v, "alpha": 1 - v["alpha"]})),
]


def test_skew(ns, v):
    fn = function(ns, "skew_kl")
    for dtype, s, t, _ in _cases(v):
        s_in = s.clone().requires_grad_(True)
        got = _scalar(call(fn, s_in, t.clone()), "skew_kl")
        want = reference_skew_kl(s, t, v)
        tol = 1e-9 if dtype == "float64" else 1e-4
        if not abs(got.item() - want.item()) <= tol * (1 + abs(want.item())):
            hint = ""
            if abs(got.item() - reference_skew_kl(s, t, {**v, "lam": 1 - v["lam"]}).item()) < 1e-4:
                hint = " — looks like λ and 1 − λ swapped in the mixture"
            elif abs(got.item() - reference_skew_kl(s, t, v).item() / v["T"] ** 2) < 1e-4:
                hint = " — looks like the T² factor is missing"
            raise Failed(f"skew_kl on a {dtype} case of your variant (T = {v['T']}, λ = {v['lam']}): got "
                         f"{got.item():.6f}, expected {want.item():.6f}{hint}")
        if not got.requires_grad:
            raise Failed("skew_kl gives no gradient to the student's logits")


_RUNS: dict = {}


def reference_digits_run(v):
    """The digits run of the variant with the reference loss (computed once per process)."""
    key = (v["run_seed"], v["n_labelled"], v["T"], v["alpha"], v["eps"])
    if key not in _RUNS:
        from hwtools import digits_run

        _RUNS[key] = digits_run(v["run_seed"], v["n_labelled"], loss_fn=lambda s, t, y: reference_weighted_kd(s, t, y, v))
    return _RUNS[key]


def test_gain(ns, v):
    run = reference_digits_run(v)
    expect_close(number(ns, "GAIN"), run["kd_acc"] - run["scratch_acc"], "GAIN (accuracy points, distilled − scratch)",
                 atol=0.5)


def test_kd_nll(ns, v):
    expect_close(number(ns, "KD_NLL"), reference_digits_run(v)["kd_nll"], "KD_NLL (nats)", atol=2e-3)


prepare = reference_digits_run  # the grader's runner computes it once, before it runs any learner code

PROBLEMS = (
    Problem("kd_loss_weighted", 3, _loss_test("kd_loss_weighted", lambda s, t, y: (s, t, y), reference_weighted_kd,
                                              WEIGHTED_MISTAKES)),
    Problem("skew_kl", 2, test_skew),
    Problem("GAIN", 1, test_gain),
    Problem("KD_NLL", 2, test_kd_nll),
)
