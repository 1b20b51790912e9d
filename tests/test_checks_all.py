"""Every exercise of the course: its reference answer in solutions/lessonNN.py passes its check,
which lives in kdtutor/checks/lessonNN.py and is re-exported as kdtutor.checks.<name>; a stub that
still raises NotImplementedError is "not attempted" and falls back to a working reference; every
check has a reference answer (and every answer a check) and a nudge and an answer to show. The
typical wrong answers of each exercise are in tests/test_checks_lessonNN.py."""

import importlib
import inspect
import pkgutil

import pytest

import kdtutor.checks
import solutions
from kdtutor import checks
from kdtutor.checks import core


def _answers():
    """``[(lesson module name, function name)]`` of every reference answer in solutions/."""
    out = []
    for info in pkgutil.iter_modules(solutions.__path__):
        module = importlib.import_module(f"solutions.{info.name}")
        out += [(info.name, name) for name, fn in inspect.getmembers(module, inspect.isfunction)
                if not name.startswith("_") and fn.__module__ == module.__name__]
    return out


ANSWERS = _answers()
LESSON_MODULES = sorted(info.name for info in pkgutil.iter_modules(kdtutor.checks.__path__)
                        if info.name.startswith("lesson"))


def _is_check(fn) -> bool:
    params = list(inspect.signature(fn).parameters)
    return params[:2] == ["fn", "verbose"] and fn.__module__.startswith("kdtutor.checks.lesson")


def _checks_in(module_name: str) -> set[str]:
    module = importlib.import_module(f"kdtutor.checks.{module_name}")
    return {name for name, fn in inspect.getmembers(module, inspect.isfunction)
            if _is_check(fn) and fn.__module__ == module.__name__}


def stub(*args, **kwargs):
    raise NotImplementedError


def test_one_check_module_per_lesson_with_a_solutions_module_of_the_same_name():
    assert LESSON_MODULES == [f"lesson0{i}" for i in (0, 1, 2, 3, 4, 5, 6, 7, 8)]
    assert LESSON_MODULES == sorted({lesson for lesson, _ in ANSWERS})


def test_every_check_has_a_reference_answer_in_its_lesson_and_vice_versa():
    for lesson in LESSON_MODULES:
        assert _checks_in(lesson) == {name for m, name in ANSWERS if m == lesson}, lesson
    exported = {name for name, fn in inspect.getmembers(checks, inspect.isfunction) if _is_check(fn)}
    assert len(exported) >= 3 * 5, sorted(exported)  # at least three exercises per lesson 01–05
    assert exported == {name for _, name in ANSWERS}
    assert set(core.HINTS) == exported  # every check has a nudge and an answer, and nothing else does


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_reference_answer_passes(lesson, name):
    answer = getattr(importlib.import_module(f"solutions.{lesson}"), name)
    check = getattr(checks, name)
    assert check is getattr(importlib.import_module(f"kdtutor.checks.{lesson}"), name)
    result = check(answer, verbose=False)
    assert result.passed is True, result.message
    assert result.fn is answer


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_stub_is_not_attempted_and_falls_back_to_a_passing_reference(lesson, name, capsys, monkeypatch):
    result = getattr(checks, name)(stub)
    assert result.passed is None and result.fn is not stub
    assert "not attempted" in capsys.readouterr().out
    refused = getattr(checks, name)(result.fn, verbose=False)  # kdtutor's answer is no answer of the learner's
    assert refused.passed is False and "write it yourself" in refused.message
    monkeypatch.setattr(core, "refuse_answer_key", lambda fn, check, answers: fn)  # the fallback itself is right
    assert getattr(checks, name)(result.fn, verbose=False).passed is True


@pytest.mark.parametrize("lesson,name", ANSWERS, ids=[f"{m}.{n}" for m, n in ANSWERS])
def test_first_failure_nudges_second_failure_shows_the_answer(lesson, name):
    def crashes(*args, **kwargs):
        raise RuntimeError("a bug in the learner's code")

    hint = core.HINTS[name]
    assert hint.nudge and hint.answer and hint.nudge != hint.answer
    first = getattr(checks, name)(crashes, verbose=False)
    assert first.passed is False and hint.nudge in first.message
    assert hint.answer not in first.message and f'checks.answer("{name}")' in first.message
    second = getattr(checks, name)(crashes, verbose=False)
    assert second.passed is False and f"Answer: {hint.answer}" in second.message
    assert checks.answer(name, verbose=False) == hint.answer
