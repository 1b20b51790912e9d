"""Fingerprints: short SHA-256 digests of what a result depends on. The one place kdtutor hashes
tensors, models, data and its own code, for every cache, checkpoint and stamp.

* :func:`digest` — of strings and bytes (each part length-prefixed, so ``("ab", "c") ≠ ("a", "bc")``);
* :func:`fingerprint` — of tensors: shape, dtype and values, wherever they live;
* :func:`weights_fingerprint` — of a model's state dict (names, shapes, dtypes, values);
* :func:`code_fingerprint` — of the source of kdtutor modules and of every kdtutor module they
  import, directly or not: an edit invalidates only what depends on the edited file (an edit to
  ``kdtutor/machine.py`` or to the course tooling, ``coursetools/``, changes no learner's result).

Every fingerprint is 16 hex digits (64 bits: a chance collision is not a practical concern for a course).
"""

from __future__ import annotations

import ast
import hashlib
import sys
from functools import cache
from pathlib import Path

import torch
from torch import nn

PACKAGE_DIR = Path(__file__).resolve().parent


def digest(*parts: str | bytes) -> str:
    """SHA-256 (first 16 hex digits) of ``parts`` in order; strings count as their UTF-8 bytes."""
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else bytes(part)
        h.update(f"{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()[:16]


def tensor_bytes(t: torch.Tensor) -> bytes:
    """``"<shape>:<dtype>\\n"`` followed by the tensor's raw values (row-major, on the CPU)."""
    t = t.detach().cpu().contiguous()
    return f"{tuple(t.shape)}:{t.dtype}\n".encode() + (t.reshape(-1).view(torch.uint8).numpy().tobytes()
                                                        if t.numel() else b"")


def fingerprint(*tensors: torch.Tensor) -> str:
    """Of one or more tensors: their shapes, dtypes and values (not their device or memory layout)."""
    return digest(*(tensor_bytes(t) for t in tensors))


def weights_fingerprint(model: nn.Module) -> str:
    """Of the model's state dict: names, shapes, dtypes and values.

    Two models of one class with the same fingerprint compute the same function; a distilled run
    records its teacher's, so a student is never reused with a teacher it did not learn from.
    The memory layout (channels-last or not) does not change it.
    """
    items = sorted(model.state_dict().items())
    return digest(*(p for name, t in items for p in (name, tensor_bytes(t))))


# --------------------------------------------------------------------------- kdtutor's own code
def module_file(module: str) -> Path | None:
    """The file of kdtutor module ``module`` (a package's ``__init__.py``), or None outside kdtutor."""
    parts = module.split(".")
    if parts[0] != "kdtutor":
        return None
    base = PACKAGE_DIR.joinpath(*parts[1:])
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _imports(module: str) -> tuple[str, ...]:
    """The kdtutor modules ``module`` imports anywhere in its file (also inside functions), with
    their parent packages (importing ``kdtutor.a.b`` runs ``kdtutor/__init__`` and ``kdtutor/a/__init__``)."""
    path = module_file(module)
    tree = ast.parse(path.read_bytes())
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}  # `from kdtutor import checks`: a module
    out = set()
    for name in found:
        parts = name.split(".")
        out |= {".".join(parts[:i]) for i in range(1, len(parts) + 1) if module_file(".".join(parts[:i]))}
    return tuple(sorted(out - {module}))


def dependencies(*modules: str) -> list[str]:
    """``modules`` and every kdtutor module they import, directly or not (sorted).

    Raises:
        ValueError: a name that is not a kdtutor module.
    """
    todo, seen = list(modules), set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        if module_file(module) is None:
            raise ValueError(f"{module!r} is not a module of kdtutor")
        seen.add(module)
        todo += _imports(module)
    return sorted(seen)


@cache
def _source(module: str) -> bytes:
    """A module's source as first read by this process (the code it runs: later edits need a restart)."""
    return module_file(module).read_bytes()


def code_fingerprint(*modules: str) -> str:
    """Of the source of ``modules`` and of every kdtutor module they import (:func:`dependencies`):
    what a result computed by these modules depends on among kdtutor's code."""
    return digest(*(p for m in dependencies(*modules) for p in (m, _source(m))))


# --------------------------------------------------------------------------- anything a result depends on
_MODULE_INTERNALS = frozenset(nn.Module().__dict__) - {"training"}  # parameters, buffers, hooks, …
_SIMPLE = (type(None), bool, int, float, str)


def _origin(obj) -> str:
    """``"kdtutor"``, ``"library"`` (an installed package: keyed by its version) or ``"user"`` (a
    notebook, a script or a local file: keyed by its code)."""
    module = getattr(obj, "__module__", None) or ""
    top = module.partition(".")[0]
    if top == "kdtutor":
        return "kdtutor"
    if top in sys.stdlib_module_names or top in ("builtins", "torch") or _version(top):
        return "library"  # Python's own (keyed by Python's version) or an installed package
    return "user"


@cache
def _version(top: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(top)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def _named(obj) -> dict:
    """How a library's or kdtutor's function or class is keyed: its name and version or code."""
    module, name = obj.__module__ or "", getattr(obj, "__qualname__", repr(obj))
    if _origin(obj) == "kdtutor" and module_file(module):
        return {"kdtutor": f"{module}.{name}", "code": code_fingerprint(module)}
    return {"library": f"{module}.{name}", "version": _version(module.partition(".")[0])}


def _globals_read(code) -> list[str]:
    """The global names ``code`` (and the functions and comprehensions defined in it) reads."""
    import dis

    names = [i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")]
    for const in code.co_consts:
        if hasattr(const, "co_code"):
            names += _globals_read(const)
    return sorted(set(names))


def _code_parts(code) -> list:
    """A code object's bytecode, names and constants (nested code objects included), without its file
    or line numbers."""
    consts = [_code_parts(c) if hasattr(c, "co_code") else sorted(map(repr, c)) if isinstance(c, frozenset)
              else repr(c) for c in code.co_consts]  # a frozenset's order changes from one process to the next
    return [code.co_code.hex(), list(code.co_names), list(code.co_varnames), list(code.co_freevars), consts]


def _function(fn, seen: set):
    """A user's function: its code, defaults, the globals it reads and its closure's values, recursively."""
    import builtins

    glob = fn.__globals__
    read = {}
    for name in _globals_read(fn.__code__):
        if name in glob:
            read[name] = content_key(glob[name], seen, f"the global {name!r} that {fn.__qualname__} reads")
        elif not hasattr(builtins, name):
            read[name] = "undefined"
    cells = [c.cell_contents if _filled(c) else "empty" for c in (fn.__closure__ or ())]
    return {"function": fn.__qualname__, "code": _code_parts(fn.__code__),
            "defaults": content_key([fn.__defaults__, fn.__kwdefaults__], seen, f"the defaults of {fn.__qualname__}"),
            "globals": read,
            "closure": {n: content_key(v, seen, f"the variable {n!r} that {fn.__qualname__} closes over")
                        for n, v in zip(fn.__code__.co_freevars, cells)}}


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:
        return False
    return True


def _class(cls: type, seen: set):
    """A user's class: its own attributes and methods (by code), and its bases."""
    own = {name: content_key(v.__func__ if isinstance(v, (staticmethod, classmethod)) else v, seen,
                             f"the class attribute {cls.__qualname__}.{name}")
           for name, v in sorted(vars(cls).items())
           if not (name.startswith("__") and name.endswith("__")) or name in ("__init__", "__call__")}
    return {"class": cls.__qualname__, "own": own,
            "bases": [content_key(b, seen, f"a base of {cls.__qualname__}") for b in cls.__bases__]}


def _model(model: nn.Module, seen: set):
    """A model: the code of every submodule's class, its weights, its buffers (persistent or not),
    its plain attributes (a temperature ``T``, a flag, …), its train/eval mode and its hooks."""
    parts = {}
    for name, m in model.named_modules():
        hooks = [h for d in (m._forward_hooks, m._forward_pre_hooks) for h in d.values()]
        attrs = {k: v for k, v in vars(m).items() if k not in _MODULE_INTERNALS}
        parts[name] = {"class": content_key(type(m), seen, f"the class of {name or 'the model'}"),
                       "attributes": content_key(attrs, seen, f"an attribute of {name or 'the model'}"),
                       "buffers": {k: fingerprint(b) for k, b in m._buffers.items() if b is not None},
                       "hooks": content_key(hooks, seen, f"a hook of {name or 'the model'}")}
    return {"model": parts, "weights": weights_fingerprint(model)}


def content_key(value, seen: set | None = None, what: str = "a value"):
    """What identifies ``value`` in a cache key (JSON-ready): the value itself for numbers, strings and
    None; for tensors, their :func:`fingerprint`; for models, their classes' code, weights, buffers,
    attributes and mode; for data sets and loaders (anything with a ``fingerprint()`` method), that;
    for functions and classes, kdtutor's by their module's :func:`code_fingerprint`, a library's by its
    name and version, a user's by its code, the globals it reads and its closure, recursively; lists,
    tuples, dicts, sets and dataclasses element by element.

    Raises:
        TypeError: a value of another kind (an open file, an optimiser, …), named with where it was
            met (``what``): pass what it holds instead, or compute the result without a cache.
    """
    import dataclasses
    import functools
    import types

    seen = set() if seen is None else seen
    if isinstance(value, _SIMPLE):
        return value
    if isinstance(value, (torch.device, torch.dtype)):
        return str(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": fingerprint(value)}
    if isinstance(value, (list, tuple)):
        return [content_key(v, seen, what) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((content_key(v, seen, what) for v in value), key=repr)
    if isinstance(value, dict):
        return {str(k): content_key(v, seen, what) for k, v in value.items()}
    if id(value) in seen:  # a function that calls itself, a class that names itself
        return {"again": getattr(value, "__qualname__", type(value).__name__)}
    if isinstance(value, types.ModuleType):
        origin = _origin(types.SimpleNamespace(__module__=value.__name__))
        if origin == "kdtutor" and module_file(value.__name__):
            return {"module": value.__name__, "code": code_fingerprint(value.__name__)}
        if origin == "library":
            return {"module": value.__name__, "version": _version(value.__name__.partition(".")[0])}
        source = getattr(value, "__file__", None)
        return {"module": value.__name__, "file": digest(Path(source).read_bytes()) if source else None}
    seen = seen | {id(value)}
    if isinstance(value, types.MethodType):
        return {"method": content_key(value.__func__, seen, what), "of": content_key(value.__self__, seen, what)}
    if isinstance(value, functools.partial):
        return {"partial": content_key([value.func, value.args, value.keywords], seen, what)}
    if isinstance(value, (types.FunctionType, type)):
        return _named(value) if _origin(value) != "user" else (
            _function(value, seen) if isinstance(value, types.FunctionType) else _class(value, seen))
    if isinstance(value, property):
        return {"property": content_key([value.fget, value.fset], seen, what)}
    if isinstance(value, (types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType,
                          types.MethodDescriptorType)) or (callable(value) and _origin(value) == "library"
                                                           and not isinstance(value, nn.Module)):
        return {"builtin": f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', repr(value))}"}
    if isinstance(value, nn.Module):
        return _model(value, seen)
    if callable(getattr(value, "fingerprint", None)):
        return {type(value).__name__: value.fingerprint()}
    if dataclasses.is_dataclass(value):
        return {"dataclass": content_key(type(value), seen, what),
                "fields": {f.name: content_key(getattr(value, f.name), seen, what) for f in dataclasses.fields(value)}}
    raise TypeError(f"cannot key a result by {what}, a {type(value).__name__}: pass a model, data, a tensor, "
                    "a function, a number or a string (or a list or dict of those), or compute it without a cache")


def code_key(*objects) -> str:
    """Of the code that ``objects`` run, not of the data they hold: for a model, the classes of all its
    submodules; for a function, its own code; for anything else, its class. kdtutor's code counts by
    :func:`code_fingerprint`, a library's by its version, a user's by its code and that of the functions
    and classes it reads, recursively. A checkpoint records it, so a model trained by other code (an
    edited ``forward``, another activation, another loss) is never loaded as current."""
    import json
    import types

    def attribute(value, seen):  # a class's own attribute: methods by their code, settings by their value
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, property):
            return [attribute(f, seen) for f in (value.fget, value.fset)]
        if isinstance(value, (types.FunctionType, type)):
            return code(value, seen)
        return repr(value) if isinstance(value, _SIMPLE) else type(value).__qualname__  # no addresses

    def code(obj, seen):
        if isinstance(obj, nn.Module):
            return [code(c, seen) for c in sorted({type(m) for m in obj.modules()}, key=lambda c: c.__qualname__)]
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if not isinstance(obj, (types.FunctionType, type)):
            obj = type(obj)
        if _origin(obj) != "user":
            return _named(obj)
        if id(obj) in seen:
            return {"again": obj.__qualname__}
        seen = seen | {id(obj)}
        if isinstance(obj, type):
            return {"class": obj.__qualname__, "bases": [code(b, seen) for b in obj.__bases__],
                    "own": {k: attribute(v, seen) for k, v in sorted(vars(obj).items())
                            if not k.startswith("__") or k in ("__init__", "__call__")}}
        reads = {n: code(obj.__globals__[n], seen) for n in _globals_read(obj.__code__)
                 if isinstance(obj.__globals__.get(n), (types.FunctionType, type))}
        return {"function": obj.__qualname__, "code": _code_parts(obj.__code__), "reads": reads}

    return digest(json.dumps([code(o, set()) for o in objects], sort_keys=True))
