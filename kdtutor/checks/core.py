"""The machinery every exercise check shares: running a check, hints, answers, comparisons.

A check runs the learner's function on test cases. The first ✗ of a check shows what
went wrong and a *nudge*; the full answer comes only with a second ✗ of the same check
(or on request: ``checks.answer("name")``), so a learner gets a chance to find it first.
A pass resets the count. ``reset()`` forgets every count (tests call it).

While a check runs the learner's function, kdtutor's own answer is off limits: a call to the
check's reference (the fallback it returns) or to the kdtutor function it wraps (listed per
check as ``answer_key``) fails the check with "write it yourself: this calls …". A profile hook
(:func:`sys.setprofile`) watches the calls made while the learner's function runs; torch and
every other library stay allowed.

A check never stops the lesson: when it does not pass, its ``fn`` is kdtutor's reference
(wrapped, so that it can be told apart). :func:`require` is the strict form for autograders
(nbgrader's test cells): it raises unless the learner's own function passes. Each exercise is
worth ``points(name)`` points (``register(..., points=)``, default 1).

In a graded release (``python -m coursetools release``, which writes :data:`RELEASE_MARKER`) the
full answers are disabled: ``checks.answer`` and the second ✗ say so instead.

When ``$KDTUTOR_GRADE_LOG`` names a file, every check also appends its result there as one JSON
line (a convenience for the learner's own tools; ``python -m coursetools grade`` does not trust it:
it re-runs the checks itself, see :mod:`coursetools.grading`).
"""

from __future__ import annotations

import ast
import dis
import functools
import inspect
import json
import math
import numbers
import os
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import torch


@dataclass
class CheckResult:
    """``passed`` is True, False, or None (not attempted); ``fn`` is what the lesson uses next."""

    name: str
    passed: bool | None
    message: str
    fn: Callable
    detail: str = ""  # what failed (the first wrong case, or the learner's exception); "" if it passed

    def __bool__(self) -> bool:
        return bool(self.passed)


@dataclass(frozen=True)
class Hint:
    """What a failing check says: ``nudge`` first, ``answer`` (the full solution) on request."""

    nudge: str
    answer: str


class Failed(AssertionError):
    """Raised inside a check when a case fails; its message is shown to the learner."""


HINTS: dict[str, Hint] = {}
POINTS: dict[str, int] = {}
_failures: dict[str, int] = {}
RELEASE_MARKER = Path(__file__).resolve().parent.parent / "graded_release.json"
DISABLED = ("the instructor disabled the full answers in this graded release; ask them, or reread the "
            "lesson and the hint")


def register(name: str, nudge: str, answer: str, points: int = 1) -> str:
    """Declare the hints of the check ``name`` and what its exercise is worth (called once per
    check, at import); ``points``: a whole number ≥ 1."""
    if isinstance(points, bool) or not isinstance(points, int) or points < 1:
        raise ValueError(f"check {name!r}: points must be a whole number >= 1, got {points!r}")
    HINTS[name] = Hint(nudge, answer)
    POINTS[name] = points
    return name


def _known(name: str) -> None:
    if name not in HINTS:
        raise ValueError(f"no exercise check is named {name!r}; the checks are: {', '.join(sorted(HINTS))}")


def points(name: str) -> int:
    """What the exercise checked by ``checks.<name>`` is worth (nbgrader's and ``kdtutor grade``'s points)."""
    _known(name)
    return POINTS[name]


def answers_disabled() -> bool:
    """Whether this copy of kdtutor is a graded release (:data:`RELEASE_MARKER` exists): no full answers."""
    return RELEASE_MARKER.exists()


def answer(name: str, verbose: bool = True) -> str:
    """The full answer of the exercise checked by ``checks.<name>``; printed unless ``verbose=False``.
    In a graded release: a sentence saying the instructor disabled it."""
    _known(name)
    text = DISABLED if answers_disabled() else HINTS[name].answer
    if verbose:
        print(f"{name}: {text}")
    return text


def reset(name: str | None = None) -> None:
    """Forget how often the check ``name`` (default: every check) has failed."""
    if name is None:
        _failures.clear()
    else:
        _failures.pop(name, None)


def failures(name: str) -> int:
    """How many times the check ``name`` has failed since it last passed (or since ``reset``)."""
    return _failures.get(name, 0)


def run_check(name: str, fn: Callable, reference: Callable, test: Callable[[Callable], None],
              verbose: bool = True, answer_key: tuple[Callable, ...] = ()) -> CheckResult:
    """Run ``test(fn)``; report ✓, ✗ (nudge, then the answer) or "not attempted"; return a :class:`CheckResult`.

    ``test`` raises :class:`Failed` with a specific message at the first wrong case.
    Any other exception raised by the learner's code counts as a failure too, and so does a
    call, while ``fn`` runs, to ``reference`` or to any function in ``answer_key`` (kdtutor's
    own implementations of the exercise: see :func:`refuse_answer_key`). Unless it passed, the
    result's ``fn`` is ``reference`` wrapped by :func:`_fallback`.
    """
    hint = HINTS[name]
    fallback = "  The lesson continues with kdtutor's reference."
    try:
        test(refuse_answer_key(fn, name, (reference, *answer_key)))
    except NotImplementedError:
        detail = "not attempted yet (the stub raises NotImplementedError)"
        result = CheckResult(name, None, f"… {name}: {detail}. The lesson continues with kdtutor's reference.",
                             _fallback(name, reference, detail), detail)
    except Exception as e:  # Failed, or the learner's code crashed
        detail = str(e) if isinstance(e, Failed) else f"your function raised {type(e).__name__}: {e}"
        _failures[name] = _failures.get(name, 0) + 1
        if _failures[name] >= 2:
            more = f"  Answer: {DISABLED if answers_disabled() else hint.answer}\n"
        elif answers_disabled():
            more = "  Fix it and run the check again (full answers are disabled in this graded release).\n"
        else:
            more = f"  Fix it and run the check again; a second ✗ shows the answer (or: checks.answer(\"{name}\")).\n"
        result = CheckResult(name, False, f"✗ {name}: {detail}\n  Hint: {hint.nudge}\n{more}{fallback}",
                             _fallback(name, reference, detail), detail)
    else:
        _failures.pop(name, None)
        result = CheckResult(name, True, f"✓ {name}: all cases pass.", fn)
    _record(result, fn)
    if verbose:
        print(result.message)
    return result


def _private(f: Callable) -> bool:
    """Whether ``f`` is a check's own reference (a closure or a ``_name``), not a kdtutor function."""
    qualname = getattr(f, "__qualname__", getattr(f, "__name__", repr(f)))
    return "<locals>" in qualname or qualname.startswith("_")


def _display_name(f: Callable, check: str) -> str:
    """``kdtutor.losses.kl_divergence`` for a module-level function; a check's own reference is
    named by the check it belongs to."""
    if _private(f):
        return f"kdtutor's reference answer for {check} (what checks.{check}(...).fn falls back to)"
    return f"{f.__module__}.{getattr(f, '__qualname__', f.__name__)}"


MIN_INSTRUCTIONS = 12  # a shorter function is a copy of kdtutor's only if its docstring is kdtutor's too


def code_fingerprint(code: types.CodeType) -> tuple:
    """What a copy of ``code`` keeps whatever it is named: its bytecode, the names and constants it
    uses (nested code objects, e.g. a lambda's, by their own fingerprints), its arguments; not its
    name, file, line numbers, local variable names or docstring. Two functions compiled from the
    same source text (or one made by ``types.FunctionType(f.__code__.replace(co_name=...), ...)``)
    have the same fingerprint; a short one (fewer than :data:`MIN_INSTRUCTIONS` instructions,
    which a learner may well write the same way) keeps its docstring in the fingerprint too."""
    consts = code.co_consts
    doc = consts[0] if consts and isinstance(consts[0], str) else None
    body = consts[1:] if consts and (consts[0] is None or isinstance(consts[0], str)) else consts
    kept = tuple(code_fingerprint(c) if isinstance(c, types.CodeType) else (type(c).__name__, repr(c))
                 for c in body)
    short = sum(1 for i in dis.get_instructions(code) if i.opname not in ("CACHE", "RESUME", "NOP")) \
        < MIN_INSTRUCTIONS
    return (code.co_code, code.co_names, kept, code.co_argcount, code.co_posonlyargcount,
            code.co_kwonlyargcount, code.co_flags & 0xFFFF, doc if short else None)  # not __future__ flags


MIN_NODES = 40  # a function of fewer syntax nodes is a copy of kdtutor's only if its docstring is too


def source_fingerprint(f: Callable) -> str | None:
    """``f``'s source text as its syntax tree, without its name, decorators, annotations and
    docstring (the docstring kept for a short function: fewer than :data:`MIN_NODES` nodes), so
    that a copy of a kdtutor function pasted under another name (compiled with or without
    ``from __future__ import annotations``, reformatted, comments changed) has kdtutor's; None
    when the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(f)))
    except (OSError, TypeError, SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return None
    doc = ast.get_docstring(node, clean=False)
    if doc is not None:
        node.body = node.body[1:] or [ast.Pass()]
    node.name, node.decorator_list, node.returns = "_", [], None
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            sub.annotation = None
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sub.returns = None
        elif isinstance(sub, ast.AnnAssign):
            sub.annotation = ast.Constant(None)
    dump = ast.dump(node, annotate_fields=False)
    return dump if sum(1 for _ in ast.walk(node)) >= MIN_NODES else f"{doc!r} {dump}"


_kdtutor_source = functools.lru_cache(maxsize=256)(source_fingerprint)  # kdtutor's own functions: read once


def _reachable(fn: Callable, limit: int = 200) -> list:
    """``fn`` and the Python functions it reaches without running: the globals its code names and
    the variables it closes over, then theirs (at most ``limit`` functions; modules and classes are
    not followed). ``fn`` unwrapped first (``functools.wraps``, ``functools.partial``)."""
    out, todo, seen = [], [fn], set()
    while todo and len(out) < limit:
        f = todo.pop()
        while isinstance(f, functools.partial):
            f = f.func
        f = inspect.unwrap(f) if callable(f) else f
        if not isinstance(f, types.FunctionType) or id(f) in seen:
            continue
        seen.add(id(f))
        out.append(f)
        code = f.__code__
        todo += [f.__globals__[n] for n in code.co_names if n in f.__globals__]
        todo += [c.cell_contents for c in f.__closure__ or () if _filled(c)]
        todo += [d for d in (f.__defaults__ or ()) if isinstance(d, (types.FunctionType, functools.partial))]
    return out


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


def _copy_key(code: types.CodeType, private: bool) -> tuple:
    """What a copy of ``code`` shares with it: its :func:`code_fingerprint`, and for a check's own
    reference (``private``) also where it was written (a learner who types the short reference the
    hint gives writes the same code elsewhere; a renamed code object keeps the place)."""
    return (code_fingerprint(code), (code.co_filename, code.co_firstlineno) if private else None)


class _Copies:
    """kdtutor's implementations of one exercise (``answers``), and which of them a function copies."""

    def __init__(self, answers):
        self.answers = [f for f in map(inspect.unwrap, answers) if isinstance(f, types.FunctionType)]
        self.codes = {_copy_key(f.__code__, _private(f)): f for f in self.answers}
        self.names = {f.__code__.co_names for f in self.answers}  # a cheap first test
        self.sources = {}
        for f in self.answers:
            text = None if _private(f) else _kdtutor_source(f)
            if text is not None:
                self.sources.setdefault(text, f)
        self._seen: dict[int, tuple] = {}  # id(code) → (code, the answer it copies or None); code kept alive

    def of_code(self, code: types.CodeType) -> Callable | None:
        """The answer ``code`` is a copy of (not the answer's own code), or None; remembered per code."""
        if code.co_names not in self.names:
            return None
        entry = self._seen.get(id(code))
        if entry is None or entry[0] is not code:
            same = None
            if all(code is not f.__code__ for f in self.answers):
                same = self.codes.get(_copy_key(code, False)) or self.codes.get(_copy_key(code, True))
            entry = self._seen[id(code)] = (code, same)
        return entry[1]

    def of_function(self, fn: Callable) -> tuple[str, Callable] | None:
        """``(name, answer)`` when ``fn`` or a function it reaches (:func:`_reachable`) has the code
        of one of the answers without being it, or the normalised source text of a kdtutor function
        among them (:func:`source_fingerprint`); None otherwise."""
        for f in _reachable(fn):
            if any(f.__code__ is a.__code__ for a in self.answers):
                continue  # kdtutor's own function itself (called, not copied): the profile hook names it
            same = self.of_code(f.__code__) or (self.sources and self.sources.get(source_fingerprint(f)))
            if same:
                return f.__name__, same
        return None


def refuse_answer_key(fn: Callable, check: str, answers) -> Callable:
    """``fn`` wrapped so that, if it calls any of ``answers`` (kdtutor's implementations of the
    exercise, found by their code objects however they were imported or renamed), or is or calls a
    copy of one (the same :func:`code_fingerprint`: the same code under another name, or the same
    source text), the call to ``fn`` raises :class:`Failed` naming kdtutor's function.

    A profile hook watches only while ``fn`` runs, so a wrapper or an alias, however deep, is seen
    when it calls; the check's own calls to its reference, made outside ``fn``, are not affected.
    Switching the hook off from inside ``fn`` fails too. Other kdtutor functions (not this
    exercise's answer), torch and every other library stay allowed.
    """
    refused = {}
    for f in answers:
        f = inspect.unwrap(f)
        code = getattr(f, "__code__", None)
        if code is not None:
            refused.setdefault(code, _display_name(f, check))
    copies = _Copies(answers)

    def copy_message(name: str, answer: Callable) -> str:
        return (f"this is kdtutor's own code under another name ({name!r} is a copy of "
                f"{_display_name(answer, check)}): write your own")

    copy = copies.of_function(fn)

    def guarded(*args, **kwargs):
        if copy is not None:
            raise Failed(copy_message(*copy))
        used = []

        def hook(frame, event, arg):
            if event != "call" or used:
                return
            if frame.f_code in refused:
                used.append(f"write it yourself: this calls {refused[frame.f_code]}")
            elif (answer := copies.of_code(frame.f_code)) is not None:
                used.append(copy_message(frame.f_code.co_name, answer))

        previous = sys.getprofile()
        sys.setprofile(hook)
        try:
            out = fn(*args, **kwargs)
        except BaseException:
            if not used:
                raise
            out = None
        finally:
            intact = sys.getprofile() is hook
            sys.setprofile(previous)
        if used:
            raise Failed(used[0])
        if not intact:
            raise Failed("your function switched off the check's watch for kdtutor's answer (sys.setprofile); "
                         "leave the profiler alone")
        return out

    guarded.__name__ = getattr(fn, "__name__", "guarded")
    return guarded


FALLBACK_ATTR = "kdtutor_fallback"


def _fallback(name: str, reference: Callable, why: str) -> Callable:
    """``reference`` behind a thin wrapper that remembers it stands in for the learner's answer
    to ``name`` (and ``why``), so :func:`require` can refuse it."""
    @functools.wraps(reference)
    def stand_in(*args, **kwargs):
        return reference(*args, **kwargs)

    setattr(stand_in, FALLBACK_ATTR, (name, why))
    return stand_in


def require(name: str, fn: Callable) -> None:
    """The strict check, for autograded cells: raise :class:`Failed` unless ``fn`` is the learner's
    own function and passes ``checks.<name>``; return None (so a test cell shows no output).

    ``fn`` is refused when it is the reference a check handed out after the learner's answer did
    not pass (the check cell ``fn = checks.<name>(fn).fn`` rebinds ``fn`` to it); otherwise the
    check runs again, silently. nbgrader gives a test cell full points when it raises nothing.
    """
    import importlib

    _known(name)
    handed_out = getattr(fn, FALLBACK_ATTR, None)
    if handed_out is not None:
        raise Failed(f"✗ {handed_out[0]}: {handed_out[1]}. The lesson continued with kdtutor's reference, "
                     "which earns no points.")
    check = getattr(importlib.import_module("kdtutor.checks"), name)
    result = check(fn, verbose=False)
    if not result.passed:
        raise Failed(f"✗ {name}: {result.detail.rstrip('.')}.\n  Hint: {HINTS[name].nudge}")


GRADE_LOG_ENV = "KDTUTOR_GRADE_LOG"


def _record(result: CheckResult, fn: Callable) -> None:
    """Append ``result`` to ``$KDTUTOR_GRADE_LOG`` (if set): check, the checked function's name, outcome."""
    path = os.environ.get(GRADE_LOG_ENV, "").strip()
    if not path:
        return
    line = json.dumps({"check": result.name, "function": getattr(fn, "__name__", None),
                       "passed": result.passed, "message": result.message})
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


# --------------------------------------------------------------------------- comparisons
def fmt(x) -> str:
    """A short printable form of a tensor (its values, or its shape when large) or any value."""
    if isinstance(x, torch.Tensor):
        if x.numel() > 8:
            return f"tensor of shape {tuple(x.shape)}"
        return str([round(v, 4) for v in x.detach().flatten().tolist()])
    return repr(x)


def expect_tensor_close(got, want: torch.Tensor, what: str, atol: float = 1e-5, rtol: float = 1e-4) -> None:
    """Fail unless ``got`` is a finite tensor of ``want``'s shape and close to it."""
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise Failed(f"{what}: result has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if not torch.isfinite(got).all():
        raise Failed(f"{what}: result contains NaN or inf: {fmt(got)}")
    if not torch.allclose(got.double(), want.double(), atol=atol, rtol=rtol):
        raise Failed(f"{what}: got {fmt(got)}, expected {fmt(want)}")


def expect_number_close(got, want: float, what: str, rel: float = 1e-4, abs_: float = 1e-6) -> None:
    """Fail unless ``got`` is a number (or one-element tensor, e.g. a loss) close to ``want``. An
    exercise that asks for a Python number checks ``got`` with :func:`python_number` first."""
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise Failed(f"{what}: expected a single number, got a tensor of shape {tuple(got.shape)}")
        got = got.item()
    if isinstance(got, bool) or not isinstance(got, numbers.Real):
        raise Failed(f"{what}: expected a number, got {type(got).__name__}")
    if not math.isclose(float(got), want, rel_tol=rel, abs_tol=abs_):
        raise Failed(f"{what}: got {got:.6g}, expected {want:.6g}")


def expect_raises(fn: Callable, exc: type, what: str) -> None:
    """Fail unless calling ``fn()`` raises ``exc``."""
    try:
        fn()
    except exc:
        return
    except (NotImplementedError, Failed):  # not attempted, or kdtutor's answer used
        raise
    except Exception as e:
        raise Failed(f"{what}: raised {type(e).__name__} ({e}), expected {exc.__name__}") from None
    raise Failed(f"{what}: nothing was raised, expected {exc.__name__}")


def call_on_copies(f: Callable, what: str, *args):
    """Call the learner's ``f`` on copies of ``args``; fail if it changed a tensor argument in place."""
    copies = [a.clone() if isinstance(a, torch.Tensor) else a for a in args]
    got = f(*copies)
    for a, c in zip(args, copies):
        if isinstance(a, torch.Tensor) and not torch.equal(a, c.detach()):
            raise Failed(f"{what}: your function changed its input tensor in place (e.g. `z -= z.max()`); "
                         "compute a new tensor instead (`z = z - z.max(...)`) so the caller's data stay intact")
    return got


def _close(got, value, atol: float, rtol: float) -> bool:
    """Whether ``got`` is a finite number or tensor close to ``value`` (of the same shape)."""
    try:
        got_t = torch.as_tensor(got, dtype=torch.float64)
        value_t = torch.as_tensor(value, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return (got_t.shape == value_t.shape and bool(torch.isfinite(got_t).all())
            and torch.allclose(got_t, value_t, atol=atol, rtol=rtol))


def _has_nan(got) -> bool:
    try:
        return bool(torch.isnan(torch.as_tensor(got, dtype=torch.float64)).any())
    except (TypeError, ValueError, RuntimeError):
        return False


def _non_finite(got) -> bool:
    try:
        return not bool(torch.isfinite(torch.as_tensor(got, dtype=torch.float64)).all())
    except (TypeError, ValueError, RuntimeError):
        return False


def expect_close_or_explain(got, want, what: str, mistakes=(), atol: float = 1e-5, rtol: float = 1e-4,
                            nan_hint: str = "", inf_hint: str = "") -> None:
    """Fail unless ``got`` is close to ``want``; if it matches a known mistake, say which.

    ``want``: a tensor, or a number / one-element tensor for a scalar result.
    ``mistakes``: ``(value that mistake produces, explanation)`` pairs, consulted only on failure.
    ``nan_hint``: added when ``got`` holds NaN (or inf, when there is no ``inf_hint``).
    ``inf_hint``: added when ``got`` holds ±inf and no NaN (a different cause than NaN's).
    """
    try:
        if isinstance(want, torch.Tensor) and want.ndim > 0:
            expect_tensor_close(got, want, what, atol=atol, rtol=rtol)
        else:
            expect_number_close(got, float(want), what, rel=rtol, abs_=atol)
    except Failed as e:
        for value, why in mistakes:
            if _close(got, value, atol, rtol):
                raise Failed(f"{e}. {why}") from None
        hint = (inf_hint or nan_hint) if _non_finite(got) and not _has_nan(got) else nan_hint
        if hint and _non_finite(got):
            raise Failed(f"{e}. {hint}") from None
        raise


def scalar_result(got, what: str) -> torch.Tensor:
    """``got`` if it is a one-element tensor (a loss you can call ``.backward()`` on), else :class:`Failed`."""
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor (a scalar loss you can call .backward() on), "
                     f"got {type(got).__name__}")
    if got.numel() != 1:
        raise Failed(f"{what}: expected a single number (mean over the batch), got a tensor of shape "
                     f"{tuple(got.shape)}")
    return got


def expect_student_gradient(f: Callable, args: tuple, want_grad: torch.Tensor, what: str, index: int = 0) -> None:
    """Fail unless ``f(*args)`` is a loss connected to ``args[index]`` (the student's logits) whose
    gradient with respect to it is ``want_grad``. Catches ``.detach()``, ``.item()``,
    ``torch.tensor(loss.item())``, numpy and ``torch.no_grad()``: training could not move the student."""
    args = list(args)
    student = args[index].detach().clone().requires_grad_(True)
    args[index] = student
    loss = scalar_result(f(*args), what)
    grad = None
    if loss.requires_grad:
        (grad,) = torch.autograd.grad(loss, student, allow_unused=True)
    if grad is None:
        raise Failed(f"{what}: your loss is not connected to student_logits, so backward() could not move the "
                     "student (did you use .item(), .detach(), torch.tensor(...), numpy, or torch.no_grad()?). "
                     "Return the loss tensor itself")
    expect_tensor_close(grad, want_grad, f"{what}, the gradient with respect to student_logits",
                        atol=1e-6, rtol=1e-4)


def python_number(got, what: str, integer: bool = False) -> int | float:
    """The one rule for an exercise that returns a number: ``got`` as the Python number it holds, or
    :class:`Failed`.

    A float is asked (``integer=False``): a Python ``float`` or ``int``, or a NumPy scalar (``np.float32``
    from ``.numpy()``, ``np.float64`` from scikit-learn). An int is asked (a count, an index:
    ``integer=True``): a Python ``int`` or a NumPy integer (``np.int64`` from ``.argmax()``); a float fails,
    even ``3.0``. Never a ``bool``, and never a tensor, not even a 0-d one: a tensor is not a number
    (it prints as ``tensor(...)``, compares as a tensor, keeps its autograd graph); ``.item()`` turns it
    into one.
    """
    kind = "int" if integer else "float"
    if isinstance(got, torch.Tensor):
        if got.numel() != 1:
            raise Failed(f"{what}: expected a single Python {kind}, got a tensor of shape {tuple(got.shape)}")
        shape = "a 0-d tensor" if got.ndim == 0 else f"a tensor of shape {tuple(got.shape)}"
        raise Failed(f"{what}: got {shape}, {got.detach()!r}, expected a Python {kind}: a tensor is not a number; "
                     f"return {kind}(...) or .item() of it")
    if integer and isinstance(got, numbers.Real) and not isinstance(got, (bool, numbers.Integral)):
        raise Failed(f"{what}: expected a Python int, got {type(got).__name__} {got!r}: a count or an index is a "
                     "whole number; use integer arithmetic (// rather than /) or int(...)")
    wanted = numbers.Integral if integer else numbers.Real
    if isinstance(got, bool) or not isinstance(got, wanted):
        raise Failed(f"{what}: expected a Python {kind}, got {type(got).__name__} {fmt(got)}")
    return int(got) if integer else float(got)


# --------------------------------------------------------------------------- answers used as losses
# Shared by the checks of lessons 06 and 07: a right value is not enough when the result trains a model.
TOLERANCE = {torch.float64: (1e-6, 1e-5), torch.float32: (1e-5, 1e-4)}  # (atol, rtol) against a float64 reference


def tolerance(*values) -> tuple[float, float]:
    """``(atol, rtol)`` for comparing with a float64 reference a result computed from ``values``:
    those of the least precise float dtype among the tensors (float32's when none is float64, e.g.
    for Python floats measured in float32, or for half precision)."""
    dtypes = {v.dtype for v in values if isinstance(v, torch.Tensor) and v.is_floating_point()}
    return TOLERANCE[torch.float64] if dtypes == {torch.float64} else TOLERANCE[torch.float32]


def in_place_message(what: str, name: str, kind: str = "tensor") -> str:
    """What to tell a learner whose function changed its argument ``name`` in place."""
    if kind == "list":
        return (f"{what}: your function changed its argument `{name}` in place (e.g. `{name}[i] -= ...`, "
                f"`{name}.sort()`, `{name}.append(...)`); the caller's list must stay intact: build a new list "
                f"instead (`d = [m - k for m, k in zip(...)]`)")
    return (f"{what}: your function changed its argument `{name}` in place (e.g. `{name}.sub_(...)`, "
            f"`{name} -= ...`, `{name}[...] = ...`, `masked_fill_`); the caller's {name} must stay intact: compute a "
            f"new tensor instead (`{name} - ...`, `torch.where(...)`, `masked_fill` without the underscore)")


def _same(before, after) -> bool:
    """Whether ``after`` still equals the snapshot ``before`` (a tensor: same values, NaN equal to NaN)."""
    if isinstance(before, torch.Tensor):
        return (after.shape == before.shape and after.dtype == before.dtype
                and bool(((after == before) | (after.isnan() & before.isnan())
                          if before.is_floating_point() else after == before).all()))
    return after == before


def call_checked(f: Callable, what: str, names: tuple[str, ...], *args):
    """``f(*args)``; fail, naming the argument, if ``f`` changed a tensor or list argument in place
    (its values, or its version counter: ``_version`` counts in-place writes, even ones that rewrite
    the same values). ``names``: the exercise's parameter names, one per argument."""
    snapshots = [a.detach().clone() if isinstance(a, torch.Tensor) else list(a) if isinstance(a, list) else None
                 for a in args]
    versions = [a._version if isinstance(a, torch.Tensor) else None for a in args]
    try:
        out = f(*args)
    except RuntimeError as e:  # an in-place write to a tensor that requires grad (autograd refuses it)
        leaf = [n for n, a in zip(names, args) if isinstance(a, torch.Tensor) and a.requires_grad]
        if "in-place operation" in str(e) and leaf:
            raise Failed(in_place_message(what, leaf[0])) from None
        raise
    for name, a, before, version in zip(names, args, snapshots, versions):
        if before is None:
            continue
        kind = "list" if isinstance(a, list) else "tensor"
        if not _same(before, a) or (kind == "tensor" and a._version != version):
            raise Failed(in_place_message(what, name, kind))
    return out


def as_tensor_result(got, want: torch.Tensor, what: str) -> torch.Tensor:
    """``got`` reshaped to ``want``'s shape (a 0-dim ``want`` takes any one-element tensor), or :class:`Failed`."""
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor, got {type(got).__name__}")
    if want.ndim == 0 and got.numel() == 1:
        return got.reshape(())
    if tuple(got.shape) != tuple(want.shape):
        raise Failed(f"{what}: result has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    return got


def expect_non_finite_kept(got, want: torch.Tensor, what: str, atol: float, rtol: float) -> None:
    """Fail unless ``got`` equals ``want`` where ``want`` is NaN or ±inf (a NaN or inf at a real position
    must show in the result) and is close to it elsewhere."""
    got = as_tensor_result(got, want, what).detach().double()
    want = want.detach().double()
    hidden = ~torch.isfinite(want) & torch.isfinite(got)
    if hidden.any():
        where = "" if want.ndim == 0 else f" at index {tuple(hidden.nonzero()[0].tolist())}"
        raise Failed(f"{what}: got {got[hidden][0].item():.5g}{where}, expected {want[hidden][0].item()}: "
                     "a NaN or inf at a real position must show in "
                     "the result, and yours hides it (torch.nan_to_num, clamp, nanmean/nansum, an isfinite mask, "
                     "or an epsilon added inside a log?). Let it propagate: a loss that quietly turns NaN into a "
                     "number trains on garbage and hides the bug")
    if not torch.isclose(got, want, atol=atol, rtol=rtol, equal_nan=True).all():
        raise Failed(f"{what}: got {fmt(got)}, expected {fmt(want)}")


def no_gradient_message(what: str, name: str) -> str:
    return (f"{what}: your result has no gradient with respect to `{name}`, so backward() could not train "
            f"anything through it: don't use .item(), .detach(), .numpy(), torch.tensor(...) or torch.no_grad() "
            f"on the way; return the tensor computed from `{name}`")


def gradient_of(f: Callable, args: tuple, index: int, names: tuple[str, ...], what: str,
                weights: torch.Tensor | None = None) -> torch.Tensor:
    """The gradient of ``f(*args)`` (weighted by ``weights`` and summed, or a one-element result as it
    is) with respect to ``args[index]``, called through :func:`call_checked`; :class:`Failed` if the
    result has no gradient with respect to it."""
    args = list(args)
    x = args[index] = args[index].detach().clone().requires_grad_(True)
    got = call_checked(f, what, names, *args)
    if not isinstance(got, torch.Tensor):
        raise Failed(f"{what}: expected a torch.Tensor (one you can call .backward() on), got {type(got).__name__}")
    if weights is None:
        if got.numel() != 1:
            raise Failed(f"{what}: expected one number (a 0-dim tensor), got shape {tuple(got.shape)}")
        loss = got.reshape(())
    else:
        if tuple(got.shape) != tuple(weights.shape):
            raise Failed(f"{what}: result has shape {tuple(got.shape)}, expected {tuple(weights.shape)}")
        loss = (got * weights.to(got.dtype)).sum()
    grad = torch.autograd.grad(loss, x, allow_unused=True)[0] if loss.requires_grad else None
    if grad is None:
        raise Failed(no_gradient_message(what, names[index]))
    return grad


def dtype_name(x: torch.Tensor) -> str:
    """``"float32"`` for a float32 tensor: how a check names the precision a case runs in."""
    return str(x.dtype).removeprefix("torch.")


def expect_gradient(grad: torch.Tensor, want: torch.Tensor, what: str, atol: float, rtol: float,
                    why: str = "") -> None:
    """Fail unless the gradient ``grad`` (from :func:`gradient_of`) is close to ``want``; ``why`` is
    added to the message (what usually makes it wrong)."""
    try:
        expect_tensor_close(grad, want, what, atol=atol, rtol=rtol)
    except Failed as e:
        raise Failed(f"{e}{why}") from None
