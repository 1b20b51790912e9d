"""Exercise checks: each runs your function on test cases and prints ✓ or ✗ with a hint.

One module per lesson, so you find a lesson's checks by its number:

    lesson00   warmup_argmax
    lesson01   stable_log_softmax, entropy_nats, temperature_for_entropy
    lesson02   kl_batchmean, combined_kd_loss, kd_term
    lesson03   flip_batch, translate_batch, conv_bn_params
    lesson04   kd_step, cached_lookup, best_class_shift
    lesson05   expected_calibration_error, top1_agreement, macro_f1, summarize_seeds
    lesson06   nckd_per_example, standardize, paired_gain
    lesson07   reverse_kl_tokens, masked_token_mean, topk_renormalized_kl
    lesson08   shared_mistakes
    core       what they share: run_check, CheckResult, the hints, comparisons

Every check is also available here, as ``kdtutor.checks.<name>``. Use in a lesson::

    def stable_log_softmax(logits, T=1.0):
        raise NotImplementedError  # your code here

    stable_log_softmax = checks.stable_log_softmax(stable_log_softmax).fn

A check returns a :class:`CheckResult`. Its ``fn`` is your function when it passed,
and kdtutor's reference otherwise, so the lesson always continues. A stub that
still raises ``NotImplementedError`` counts as "not attempted", not as a failure, and one
that calls kdtutor's own answer (the fallback, or e.g. ``kdtutor.kd.losses.kl_divergence`` in
``kl_batchmean``) fails: "write it yourself: this calls kdtutor.kd.losses.kl_divergence".
The first ✗ of a check gives a nudge; a second ✗ of the same check adds the full
answer, and ``checks.answer("stable_log_softmax")`` prints it at any time (except in a
graded release, where the instructor disabled the full answers).

Autograders (nbgrader's test cells) use the strict form, which raises unless your own
function passes: ``checks.require("stable_log_softmax", stable_log_softmax)``; each exercise
is worth ``checks.points("stable_log_softmax")`` points.
"""

from kdtutor.checks.core import CheckResult, Failed, answer, points, require, reset, run_check
from kdtutor.checks.lesson00 import warmup_argmax
from kdtutor.checks.lesson01 import entropy_nats, stable_log_softmax, temperature_for_entropy
from kdtutor.checks.lesson02 import combined_kd_loss, kd_term, kl_batchmean
from kdtutor.checks.lesson03 import conv_bn_params, flip_batch, translate_batch
from kdtutor.checks.lesson04 import best_class_shift, cached_lookup, kd_step
from kdtutor.checks.lesson05 import expected_calibration_error, macro_f1, summarize_seeds, top1_agreement
from kdtutor.checks.lesson06 import nckd_per_example, paired_gain, standardize
from kdtutor.checks.lesson07 import masked_token_mean, reverse_kl_tokens, topk_renormalized_kl
from kdtutor.checks.lesson08 import shared_mistakes

__all__ = [
    "CheckResult", "Failed", "answer", "points", "require", "reset", "run_check",
    "warmup_argmax",
    "stable_log_softmax", "entropy_nats", "temperature_for_entropy",
    "kl_batchmean", "combined_kd_loss", "kd_term",
    "flip_batch", "translate_batch", "conv_bn_params",
    "kd_step", "cached_lookup", "best_class_shift",
    "expected_calibration_error", "top1_agreement", "macro_f1", "summarize_seeds",
    "nckd_per_example", "standardize", "paired_gain",
    "reverse_kl_tokens", "masked_token_mean", "topk_renormalized_kl",
    "shared_mistakes",
]
