"""Every exercise of the course: its reference answer in solutions/ passes its check, a stub that
still raises NotImplementedError is "not attempted" and falls back to a working reference, and
every check has a reference answer (and every answer a check). The typical wrong answers of each
exercise are in tests/test_checks_lessonNN.py."""

import importlib
import inspect
import pkgutil

import pytest

import solutions
from kdtutor import checks, checks_lesson07


def _answers():
    """``[(lesson module name, function name)]`` of every reference answer in solutions/."""
    out = []
    for info in pkgutil.iter_modules(solutions.__path__):
        module = importlib.import_module(f"solutions.{info.name}")
        out += [(info.name, name) for name, fn in inspect.getmembers(module, inspect.isfunction)
                if not name.startswith("_") and fn.__module__ == module.__name__]
    return out


ANSWERS = _answers()
# lessons whose checks live in a module of their own (lesson 07 came while kdtutor.checks was being split)
CHECK_MODULES = {"lesson07": checks_lesson07}


def _check(lesson: str, name: str):
    return getattr(CHECK_MODULES.get(lesson, checks), name)


def _is_check(fn) -> bool:
    params = list(inspect.signature(fn).parameters)
    modules = {checks.__name__} | {m.__name__ for m in CHECK_MODULES.values()}
    return params[:2] == ["fn", "verbose"] and fn.__module__ in modules


def stub(*args, **kwargs):
    raise NotImplementedError


def test_every_check_has_a_reference_answer_and_vice_versa():
    check_names = {name for name, fn in inspect.getmembers(checks, inspect.isfunction) if _is_check(fn)}
    assert len(check_names) >= 3 * 5, sorted(check_names)  # at least three exercises per lesson 01–05
    assert check_names == {name for lesson, name in ANSWERS if lesson not in CHECK_MODULES}
    for lesson, module in CHECK_MODULES.items():
        own = {name for name, fn in inspect.getmembers(module, inspect.isfunction) if _is_check(fn)}
        assert len(own) >= 3 and own == {name for m, name in ANSWERS if m == lesson}, lesson


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_reference_answer_passes(lesson, name):
    answer = getattr(importlib.import_module(f"solutions.{lesson}"), name)
    result = _check(lesson, name)(answer, verbose=False)
    assert result.passed is True, result.message
    assert result.fn is answer


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_stub_is_not_attempted_and_falls_back_to_a_passing_reference(lesson, name, capsys):
    result = _check(lesson, name)(stub)
    assert result.passed is None and result.fn is not stub
    assert "not attempted" in capsys.readouterr().out
    assert _check(lesson, name)(result.fn, verbose=False).passed is True
