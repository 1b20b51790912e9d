"""Hidden tests of homework 2 (lessons 05–07). INSTRUCTORS ONLY: never shipped to learners.

Each test takes the notebook's namespace ``ns`` and the learner's variant ``v``
(``homework/hwtools.py:variant("hw2", roster id)``) and raises ``Failed`` on a wrong answer.
References: ``torch.topk`` for the agreement, ``scipy.stats.t`` for the paired interval,
``kdtutor.kd.losses.distillation_loss`` for the run's loss (tested against torchdistill and
``torch.nn.functional`` in the course's own tests).
"""

from __future__ import annotations

import math

import torch

from coursetools.homework import Failed, NotAttempted, Problem, call, expect_close, function, number


def reference_topk_agreement(student_logits, teacher_logits, k):
    """Fraction of rows whose teacher top-1 class is among the student's top-k classes."""
    top = student_logits.topk(k, dim=1).indices
    return float((top == teacher_logits.argmax(1, keepdim=True)).any(1).double().mean())


def reference_interval(v):
    """The 95 % paired t-interval of kd − scratch (accuracy points): (low, high)."""
    from scipy import stats

    d = [k - s for k, s in zip(v["kd"], v["scratch"])]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    return mean - half, mean + half


def reference_verdict(v):
    low, high = reference_interval(v)
    return "gain" if low > 0 else "loss" if high < 0 else "no difference"


def test_topk(ns, v):
    fn = function(ns, "topk_agreement")
    g = torch.Generator().manual_seed(v["run_seed"])
    s, t = torch.randn(40, 10, generator=g, dtype=torch.float64), torch.randn(40, 10, generator=g, dtype=torch.float64)
    cases = [("random logits", s, t), ("float32 logits", s.float(), t.float()),
             ("a student equal to its teacher", t.clone(), t.clone()),
             ("a student whose ranking is the teacher's reversed", -t, t)]
    for what, a, b in cases:
        got = call(fn, a.clone(), b.clone())
        try:
            got = float(got)
        except (TypeError, ValueError):
            raise Failed(f"topk_agreement must return a number (a float or a 0-d tensor), got {type(got).__name__}") from None
        want = reference_topk_agreement(a, b, v["k"])
        if not abs(got - want) <= 1e-6:
            hint = ""
            others = {kk: reference_topk_agreement(a, b, kk) for kk in range(1, 8) if kk != v["k"]}
            if abs(got - 100 * want) <= 1e-4:
                hint = " — a fraction in [0, 1] is asked, not a percentage"
            elif what == "random logits" and any(abs(got - w) <= 1e-6 for w in others.values()):
                used = next(kk for kk, w in others.items() if abs(got - w) <= 1e-6)
                hint = f" — that is the top-{used} agreement; your k is {v['k']}"
            raise Failed(f"topk_agreement on {what} (your k = {v['k']}): got {got:.4f}, expected {want:.4f}{hint}")


def test_interval(ns, v):
    low, high = reference_interval(v)
    got_low, got_high = number(ns, "CI_LOW"), number(ns, "CI_HIGH")
    if abs(got_low - low) > 0.01 or abs(got_high - high) > 0.01:
        d = [k - s for k, s in zip(v["kd"], v["scratch"])]
        mean = sum(d) / len(d)
        hint = (" — the interval is centred right: check the t quantile (n − 1 degrees of freedom) and the "
                "standard error (sd / √n of the differences)" if abs((got_low + got_high) / 2 - mean) < 0.01 else
                " — its centre should be the mean of the per-seed differences kd − scratch")
        raise Failed(f"CI = [{got_low:.3f}, {got_high:.3f}] points; expected [{low:.3f}, {high:.3f}] for your "
                     f"{len(d)} seeds{hint}")


def test_verdict(ns, v):
    got = ns.get("VERDICT")
    if got is None:
        raise NotAttempted("VERDICT is still None")
    if got not in ("gain", "loss", "no difference"):
        raise Failed(f"VERDICT must be 'gain', 'loss' or 'no difference', got {got!r}")
    if got != reference_verdict(v):
        raise Failed(f"VERDICT {got!r} does not follow from the 95 % paired interval of your numbers")


_RUNS: dict = {}


def reference_digits_run(v):
    """The variant's digits run, distilled with the course's loss at the variant's T and α (once per process)."""
    key = (v["run_seed"], v["n_labelled"], v["T"], v["alpha"])
    if key not in _RUNS:
        from hwtools import digits_run

        from kdtutor.kd.losses import distillation_loss

        _RUNS[key] = digits_run(v["run_seed"], v["n_labelled"],
                                loss_fn=lambda s, t, y: distillation_loss(s, t, y, T=v["T"], alpha=v["alpha"]))
    return _RUNS[key]


def test_agree(ns, v):
    run = reference_digits_run(v)
    want = reference_topk_agreement(run["kd_logits"], run["teacher_logits"], v["k"])
    expect_close(number(ns, "AGREE"), want, f"AGREE (top-{v['k']} agreement of the distilled student, a fraction)",
                 atol=0.005)


def test_agree_gain(ns, v):
    run = reference_digits_run(v)
    want = (reference_topk_agreement(run["kd_logits"], run["teacher_logits"], v["k"])
            - reference_topk_agreement(run["scratch_logits"], run["teacher_logits"], v["k"]))
    expect_close(number(ns, "AGREE_GAIN"), want, "AGREE_GAIN (distilled − scratch agreement, a fraction)", atol=0.005)


prepare = reference_digits_run  # the grader's runner computes it once, before it runs any learner code

PROBLEMS = (
    Problem("topk_agreement", 2, test_topk),
    Problem("CI", 2, test_interval),
    Problem("VERDICT", 1, test_verdict),
    Problem("AGREE", 1, test_agree),
    Problem("AGREE_GAIN", 1, test_agree_gain),
)
