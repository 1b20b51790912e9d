"""Lesson 03 exercises: the reference answers pass their checks, typical mistakes fail."""

import torch

from kdtutor import checks
from kdtutor.images import loader
from solutions import lesson03


def stub(*args):
    raise NotImplementedError


def test_stubs_are_not_attempted_and_fall_back_to_the_reference(capsys):

    result = checks.flip_batch(stub)
    assert result.passed is None and result.fn.__wrapped__ is loader.flip_batch  # wrapped: see checks.core._fallback
    assert "not attempted" in capsys.readouterr().out


def test_wrong_flips_fail():
    mirror_all = lambda x, f: x.flip(-1)  # noqa: E731  ignores the mask
    upside_down = lambda x, f: torch.where(f[:, None, None, None], x.flip(-2), x)  # noqa: E731
    def in_place(x, f):
        x[f] = x[f].flip(-1)
        return x
    for wrong in (mirror_all, upside_down, in_place):
        assert checks.flip_batch(wrong, verbose=False).passed is False


def test_wrong_translations_fail():
    swapped = lambda p, dx, dy, pad: lesson03.translate_batch(p, dy, dx, pad)  # noqa: E731
    negated = lambda p, dx, dy, pad: lesson03.translate_batch(p, -dx, -dy, pad)  # noqa: E731
    no_pad_offset = lambda p, dx, dy, pad: lesson03.translate_batch(p, dx - pad, dy - pad, pad)  # noqa: E731
    for wrong in (swapped, negated, no_pad_offset):
        result = checks.translate_batch(wrong, verbose=False)
        assert result.passed is False, wrong


def test_wrong_parameter_counts_fail(capsys):
    forgot_bn = lambda c_in, c_out, k: c_in * c_out * k * k  # noqa: E731
    counted_stats = lambda c_in, c_out, k: c_in * c_out * k * k + 4 * c_out  # noqa: E731  running mean/var too
    k_not_squared = lambda c_in, c_out, k: c_in * c_out * k + 2 * c_out  # noqa: E731
    for wrong in (forgot_bn, counted_stats, k_not_squared):
        assert checks.conv_bn_params(wrong).passed is False
    assert "Hint" in capsys.readouterr().out


def test_a_crashing_answer_is_reported_not_raised():
    result = checks.conv_bn_params(lambda *a: 1 / 0, verbose=False)
    assert result.passed is False and "ZeroDivisionError" in result.message


# --------------------------------------------------------------------------- issue 35: each answer and its message
WRONG = {
    "a float count": (lambda c_in, c_out, k: c_in * c_out * k * k + 2.0 * c_out,
                      ["expected a Python int, got float", "whole number"]),
    "a 0-d tensor": (lambda c_in, c_out, k: torch.tensor(c_in * c_out * k * k + 2 * c_out),
                     ["got a 0-d tensor", "int(...) or .item()"]),
}
RIGHT = {
    "the reference": lesson03.conv_bn_params,
    "counted from the modules": lambda c_in, c_out, k: sum(
        p.numel() for p in torch.nn.Sequential(torch.nn.Conv2d(c_in, c_out, k, bias=False),
                                               torch.nn.BatchNorm2d(c_out)).parameters()),
}


def test_issue35_wrong_answers_fail_naming_their_mistake():
    for name, (answer, fragments) in WRONG.items():
        result = checks.conv_bn_params(answer, verbose=False)
        assert result.passed is False, name
        for fragment in fragments:
            assert fragment in result.message, (name, result.message)


def test_issue35_right_answers_pass():
    for name, answer in RIGHT.items():
        result = checks.conv_bn_params(answer, verbose=False)
        assert result.passed is True, (name, result.message)
