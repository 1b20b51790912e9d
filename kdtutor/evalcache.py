"""Results computed once and reused while what they were computed from is the same (re-runs in minutes).

:func:`cached` stores ``make()``'s value under ``$KDTUTOR_DATA/evaluations/`` keyed by the *content*
of its inputs: a model by the SHA-256 of its weights (:func:`~kdtutor.checkpoints.weights_fingerprint`),
a loader by its images, labels, normalisation and batching, a tensor by its values, a function by its
code, plus kdtutor's own source files and the versions of Python and PyTorch. Change one weight, one
image, one setting or one line of kdtutor and the key changes: the value is computed again, never
silently reused. Files are :func:`kdtutor.storage.kept` files (atomic, checksummed; a corrupt one is
moved aside with a message and made again).

:func:`cached_loop` does the same for a training loop written in a notebook: the trained weights and
the lines the loop printed are kept, keyed by the loop's code, the initial weights, the data and the
settings; on a hit the weights are loaded and the lines printed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import sys
import types
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from kdtutor.checkpoints import weights_fingerprint
from kdtutor.images.loader import DeviceLoader
from kdtutor.storage import DATA_DIR, kept

EVAL_DIR = DATA_DIR / "evaluations"
PACKAGE_DIR = Path(__file__).resolve().parent


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def tensor_key(t: torch.Tensor) -> str:
    """SHA-256 (16 hex digits) of a tensor's shape, dtype and values (wherever it lives)."""
    t = t.detach().cpu().contiguous()
    head = f"{tuple(t.shape)}:{t.dtype}\n".encode()
    return _sha(head + (t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""))


def code_key(fn) -> str:
    """SHA-256 of a function's compiled code (its bytecode, constants, names, nested functions and defaults):
    editing what it does changes the key; the file it came from and its line numbers do not."""
    def parts(code: types.CodeType):
        yield code.co_code
        yield repr(code.co_names + code.co_varnames + code.co_freevars).encode()
        for c in code.co_consts:
            yield from parts(c) if isinstance(c, types.CodeType) else (repr(c).encode(),)
    defaults = repr((fn.__defaults__, fn.__kwdefaults__)).encode()
    return _sha(b"\0".join([*parts(fn.__code__), defaults]))


@lru_cache(maxsize=1)
def package_key() -> str:
    """SHA-256 of every ``.py`` file of kdtutor (names and bytes): results of other code are not reused."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(f"{path.relative_to(PACKAGE_DIR).as_posix()}\n".encode() + path.read_bytes())
    return h.hexdigest()[:16]


def content_key(value):
    """What identifies ``value`` in a cache key: content hashes for models, loaders, tensors and functions,
    the value itself for numbers, strings and None; lists, tuples and dicts element by element.

    Raises:
        TypeError: a value of another type (say how it should be identified instead of guessing).
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, nn.Module):
        return {"module": type(value).__name__, "weights": weights_fingerprint(value)}
    if isinstance(value, torch.Tensor):
        return {"tensor": tensor_key(value)}
    if isinstance(value, DeviceLoader):
        return {"loader": tensor_key(value.images), "labels": tensor_key(value.labels),
                "mean": tensor_key(value.mean), "std": tensor_key(value.std), "device": value.device.type,
                "batching": [value.batch_size, value.drop_last, value.train, value.flip, value.pad, value.seed,
                             value.alternate_flip, value.world_size, value.rank]}
    if isinstance(value, types.FunctionType):
        return {"code": code_key(value)}
    if isinstance(value, (list, tuple)):
        return [content_key(v) for v in value]
    if isinstance(value, dict):
        return {str(k): content_key(v) for k, v in value.items()}
    raise TypeError(f"cannot key a cache by a {type(value).__name__}: pass a model, loader, tensor, function, "
                    f"number, string, or a list or dict of those")


def cache_identity(name: str, inputs: dict) -> dict:
    """The full key of ``name`` computed from ``inputs``: their contents and the code and versions that compute."""
    return {"name": name, "inputs": content_key(inputs), "kdtutor_code": package_key(),
            "torch": str(torch.__version__), "python": sys.version.split()[0]}


def cached(name: str, inputs: dict, make, folder=None, refresh: bool = False):
    """``make()``'s value, computed once per content of ``inputs`` and then loaded from disk.

    Args:
        name: one word naming the result (e.g. ``"predict"``); the file is ``<folder>/<name>-<key>.pt``.
        inputs: everything ``make`` depends on, as ``{label: value}`` (see :func:`content_key`).
        make: computes the value: tensors, numbers, strings, and lists or dicts of those.
        folder: where the files go (default ``$KDTUTOR_DATA/evaluations``).
        refresh: compute again (and store) even if a current file exists.
    Returns:
        the value (tensors on the CPU when loaded from disk).
    """
    identity = cache_identity(name, inputs)
    path = Path(folder or EVAL_DIR) / f"{name}-{_sha(json.dumps(identity, sort_keys=True).encode())}.pt"
    if refresh and path.exists():
        path.unlink()
    return kept(path, "evaluation", identity, lambda: {"value": make()})["value"]


class _Tee(io.TextIOBase):
    """Writes to ``out`` and keeps a copy (what a loop printed)."""

    def __init__(self, out):
        self.out, self.copy = out, io.StringIO()

    def write(self, s: str) -> int:
        self.copy.write(s)
        return self.out.write(s)

    def flush(self) -> None:
        self.out.flush()


def cached_loop(name: str, loop, model: nn.Module, *args, rerun: bool = False, folder=None, **kwargs) -> nn.Module:
    """``loop(model, *args, **kwargs)`` — a training loop that changes ``model`` in place — run once, then reused.

    The key is the loop's code, ``model``'s initial weights (architecture and seed), every argument
    (loaders by their data and batching) and kdtutor's code. On a hit ``model`` gets the weights the loop
    made and the lines it printed are printed again, followed by a line saying they were loaded;
    ``rerun=True`` runs the loop anyway.
    """
    def make():
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            loop(model, *args, **kwargs)
        return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "printed": tee.copy.getvalue()}

    inputs = {"loop": loop, "model": model, "args": list(args), "kwargs": kwargs}
    ran = []
    saved = cached(name, inputs, lambda: ran.append(1) or make(), folder=folder, refresh=rerun)
    if not ran:
        model.load_state_dict(saved["state"])
        print(saved["printed"], end="")
        print(f"(loaded, not run: these weights and lines come from an earlier run of the same loop code, initial "
              f"weights, data and settings, kept in {Path(folder or EVAL_DIR)}; rerun=True runs it again)")
    return model
