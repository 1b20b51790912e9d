"""Results computed once and reused while everything they were computed from is the same (re-runs in minutes).

:func:`cached` stores ``make()``'s value under ``$KDTUTOR_DATA/evaluations/`` keyed by the *content* of
what it depends on (:func:`kdtutor.fingerprint.content_key`): a model by its classes' code, weights,
buffers and plain attributes (a temperature ``T``), data by its values and batching, a function by its
code, the globals it reads and the variables it closes over (recursively), kdtutor's code by the source
of the modules that compute the result and of those they import (an edit to course tooling changes no
key), plus the versions of Python and PyTorch. What cannot be keyed (an optimiser, an open file) is
refused with a ``TypeError`` naming it, never guessed. Files are :func:`kdtutor.storage.kept` files
(atomic, checksummed; a corrupt one is moved aside with a message and made again).

Lesson 03's first loop is not cached: it runs plainly, each time its cell runs.

Not keyed (so not to be changed between a run and its reuse without ``refresh=True``):
the state inside installed libraries (keyed by version only) and kdtutor files edited after this
process read them (restart the kernel after editing kdtutor, as the code that runs is the code read).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

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
