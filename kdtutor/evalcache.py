"""Results computed once and reused while everything they were computed from is the same (re-runs in minutes).

:func:`cached` stores ``make()``'s value under ``$KDTUTOR_DATA/evaluations/`` keyed by the *content* of
what it depends on (:func:`kdtutor.fingerprint.content_key`): a model by its classes' code, weights,
buffers and plain attributes (a temperature ``T``), data by its values and batching, a function by its
code, the globals it reads and the variables it closes over (recursively), kdtutor's code by the source
of the modules that compute the result and of those they import (an edit to course tooling changes no
key), plus the versions of Python and PyTorch. What cannot be keyed (an optimiser, an open file) is
refused with a ``TypeError`` naming it, never guessed. Files are :func:`kdtutor.storage.kept` files
(atomic, checksummed; a corrupt one is moved aside with a message and made again).

:func:`cached_loop` does the same for a training loop written in a notebook: the trained weights, the
random state after the loop and the lines the loop printed are kept; on a hit the weights and random
state are restored and the lines printed again.

Not keyed (so not to be changed between a run and its reuse without ``refresh=True``/``rerun=True``):
the state inside installed libraries (keyed by version only) and kdtutor files edited after this
process read them (restart the kernel after editing kdtutor, as the code that runs is the code read).
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from kdtutor.fingerprint import code_fingerprint, content_key, digest
from kdtutor.storage import DATA_DIR, kept

EVAL_DIR = DATA_DIR / "evaluations"


def cache_identity(name: str, inputs: dict, make=None) -> dict:
    """The full key of ``name`` computed by ``make`` from ``inputs``: their contents (:func:`content_key`),
    ``make``'s code, the kdtutor code that keeps results (this module) and the versions of Python and PyTorch.

    Raises:
        TypeError: an input, or something ``make`` reads, that cannot be keyed (named in the message).
    """
    return {"name": name, "inputs": content_key(inputs, what="an input"),
            "make": content_key(make, what="the function that makes the result"),
            "kdtutor_code": code_fingerprint(__name__), "torch": str(torch.__version__),
            "python": sys.version.split()[0]}


def cached(name: str, inputs: dict, make, folder=None, refresh: bool = False):
    """``make()``'s value, computed once per content of ``inputs`` (and of ``make``'s code) and then
    loaded from disk.

    Args:
        name: one word naming the result (e.g. ``"predict"``); the file is ``<folder>/<name>-<key>.pt``.
        inputs: everything ``make`` depends on, as ``{label: value}`` (see :func:`content_key`).
        make: computes the value: tensors, numbers, strings, and lists or dicts of those. Keyed too:
            its code, the globals it reads and the variables it closes over.
        folder: where the files go (default ``$KDTUTOR_DATA/evaluations``).
        refresh: compute again (and store) even if a current file exists.
    Returns:
        the value (tensors on the CPU when loaded from disk).
    Raises:
        TypeError: something the result depends on cannot be keyed: compute it without the cache.
    """
    identity = cache_identity(name, inputs, make)
    path = Path(folder or EVAL_DIR) / f"{name}-{digest(json.dumps(identity, sort_keys=True))}.pt"
    if refresh and path.exists():
        path.unlink()
    return kept(path, "evaluation", identity, lambda: {"value": make()})["value"]


def random_state() -> dict:
    """The CPU random states of PyTorch, NumPy and Python's ``random`` (tensors and numbers)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                      gauss], "random": [version, list(internal), gauss_next]}


def set_random_state(state: dict) -> None:
    """Restore what :func:`random_state` returned."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["random"]
    random.setstate((version, tuple(internal), gauss_next))


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

    The key (:func:`cache_identity`) is the loop's code with the functions, classes and globals it
    reads and the variables it closes over, ``model`` (its classes' code, initial weights and plain
    attributes), every argument (loaders by their data and batching), the random state before the loop
    and kdtutor's code. On a hit ``model`` gets the weights the loop made, the random state is set to
    the one the loop left, and the lines it printed are printed again, followed by a line saying they
    were loaded; ``rerun=True`` runs the loop anyway.

    Raises:
        TypeError: the loop reads something that cannot be keyed (named): run it without the cache.
    """
    ran = []

    def make():
        ran.append(1)
        tee = _Tee(sys.stdout)
        with contextlib.redirect_stdout(tee):
            loop(model, *args, **kwargs)
        return {"state": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "printed": tee.copy.getvalue(),
                "random_after": random_state()}

    inputs = {"loop": loop, "model": model, "args": list(args), "kwargs": kwargs, "random_before": random_state()}
    saved = cached(name, inputs, make, folder=folder, refresh=rerun)
    if not ran:
        model.load_state_dict(saved["state"])
        set_random_state(saved["random_after"])
        print(saved["printed"], end="")
        print(f"(loaded, not run: an earlier run of this loop, with the same code (the loop's and what it reads), "
              f"model, data, settings and random state, left these weights and lines in {Path(folder or EVAL_DIR)}; "
              f"rerun=True runs it again)")
    return model
