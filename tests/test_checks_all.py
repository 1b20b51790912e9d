"""Every exercise of the course: its reference answer in solutions/ passes its check, a stub that
still raises NotImplementedError is "not attempted" and falls back to a working reference, and
every check has a reference answer (and every answer a check). The typical wrong answers of each
exercise are in tests/test_checks_lessonNN.py."""

import importlib
import inspect
import pkgutil

import pytest

import solutions
from kdtutor import checks


def _answers():
    """``[(lesson module name, function name)]`` of every reference answer in solutions/."""
    out = []
    for info in pkgutil.iter_modules(solutions.__path__):
        module = importlib.import_module(f"solutions.{info.name}")
        out += [(info.name, name) for name, fn in inspect.getmembers(module, inspect.isfunction)
                if not name.startswith("_") and fn.__module__ == module.__name__]
    return out


ANSWERS = _answers()


def _is_check(fn) -> bool:
    params = list(inspect.signature(fn).parameters)
    return params[:2] == ["fn", "verbose"] and fn.__module__ == checks.__name__


def stub(*args, **kwargs):
    raise NotImplementedError


def test_every_check_has_a_reference_answer_and_vice_versa():
    check_names = {name for name, fn in inspect.getmembers(checks, inspect.isfunction) if _is_check(fn)}
    assert len(check_names) >= 3 * 5, sorted(check_names)  # at least three exercises per lesson 01–05
    assert check_names == {name for _, name in ANSWERS}


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_reference_answer_passes(lesson, name):
    answer = getattr(importlib.import_module(f"solutions.{lesson}"), name)
    result = getattr(checks, name)(answer, verbose=False)
    assert result.passed is True, result.message
    assert result.fn is answer


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_stub_is_not_attempted_and_falls_back_to_a_passing_reference(lesson, name, capsys):
    result = getattr(checks, name)(stub)
    assert result.passed is None and result.fn is not stub
    assert "not attempted" in capsys.readouterr().out
    assert getattr(checks, name)(result.fn, verbose=False).passed is True
