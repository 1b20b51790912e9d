"""Safe files: where they go, atomic writes, and checksummed ``torch.save`` payloads.

Used by the data cache (lesson 03) and by checkpoints (lessons 03–05).

A checksummed file is one header line followed by the bytes of ``torch.save``::

    KDTUTOR1 <kind> <sha256 of the payload>\\n<payload>

so a truncated or altered file is detected before anything is unpickled.
Files are written to a temporary name in the same folder and renamed into place,
so a crash or Ctrl-C mid-write never leaves a half-written file under the real name; a temporary
file left by a killed writer is removed by the next write into that folder (:func:`remove_stale_temporaries`).

A folder that cannot be written (read-only, full, a file in the way) is found before any work
(:func:`unwritable`): a cache (evaluations, decoded images) is then skipped with a warning and the
result computed anyway; a checkpoint, which the user asked for, is refused with an error before training.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tempfile
import time
import warnings
from pathlib import Path

import torch

MAGIC = b"KDTUTOR1"

# Where things go. The defaults sit beside the package (the repository's data/ and
# results/); KDTUTOR_DATA and KDTUTOR_RESULTS move them.
REPO_ROOT = Path(__file__).resolve().parent.parent


def folder_setting(name: str, default: Path, environ=None) -> Path:
    """The folder the environment variable ``name`` names, read strictly: unset or empty gives
    ``default``; ``~`` is expanded; a relative path is taken from the current folder (made absolute now).

    Raises:
        ValueError: the value starts or ends with spaces (a folder named with spaces is never what was
            meant), or names something that is not a folder (a file).
    """
    value = (os.environ if environ is None else environ).get(name, "")
    if value == "":
        return Path(default)
    if value != value.strip():
        raise ValueError(f"{name}={value!r} starts or ends with spaces: write the folder without them")
    path = Path(value).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{name}={value!r} is a file, not a folder: point {name} at a folder (it is created if "
                         "missing) or unset it")
    return path


DATA_DIR = folder_setting("KDTUTOR_DATA", REPO_ROOT / "data")
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
RESULTS_DIR = folder_setting("KDTUTOR_RESULTS", REPO_ROOT / "results")


class CorruptFileError(ValueError):
    """A file on disk is truncated, altered or of the wrong kind."""


def move_aside(path: str | os.PathLike) -> Path:
    """Rename ``path`` to ``<path>.old`` (or ``.old1``, ``.old2``, … if taken) and return the new path.

    For a file kdtutor cannot use (corrupt, or from another run): it is kept, never
    deleted, and never overwrites an earlier one set aside.
    """
    path = Path(path)
    target, n = path.with_name(path.name + ".old"), 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.old{n}")
    path.replace(target)
    return target


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def current_umask() -> int:
    """The process's file-creation mask (e.g. ``0o022``), read without changing it for long."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def unwritable(folder: str | os.PathLike) -> str | None:
    """Why files cannot be written in ``folder`` (created if missing), e.g. ``"Read-only file system"``;
    ``None`` when they can. Found by trying (permissions alone do not tell: mounts, quotas, root)."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def warn_if_unwritable(folder: str | os.PathLike, what: str) -> bool:
    """``True`` if ``folder`` can be written; otherwise warn that ``what`` is computed but not kept there."""
    why = unwritable(folder)
    if why is not None:
        warnings.warn(f"cannot write in {folder} ({why}): {what} is computed but not kept", stacklevel=3)
    return why is None


TEMPORARY_AGE = 24 * 3600  # seconds after which another machine's temporary file counts as abandoned


_TEMPORARY = re.compile(r"^\..+?(\.(?P<host>\w+)-(?P<pid>\d+))?\.[a-z0-9_]{8}\.tmp$")  # .<name>.<host>-<pid>.<random>.tmp


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of :func:`atomic_write_bytes` in ``folder`` that no writer will finish:
    those of a process of this machine that has ended (killed mid-write), and any older than a day
    (another machine's, or named before the writer's process was in the name). A live writer's
    temporary file is left alone. Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        match = _TEMPORARY.match(tmp.name)
        if match is None:
            continue
        try:
            old = time.time() - tmp.stat().st_mtime > TEMPORARY_AGE
        except FileNotFoundError:
            continue
        if old or (match["host"] == _host() and not _alive(int(match["pid"]))):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _host() -> str:
    return re.sub(r"\W", "_", socket.gethostname()) or "host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file and an atomic rename.

    The temporary file ``.<name>.<host>-<pid>.<random>.tmp`` sits beside ``path``; those left in that
    folder by writers that were killed are removed first (:func:`remove_stale_temporaries`). The file gets the
    permissions a plain ``open(path, "w")`` would give (0666 minus the user's umask, e.g. 0644), not
    the 0600 of a temporary file, so a shared data folder stays readable to the people it is shared with.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_host()}-{os.getpid()}.",
                               suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checked(obj, path: str | os.PathLike, kind: str) -> Path:
    """``torch.save(obj)`` to ``path`` atomically, behind a header with its SHA-256.

    Args:
        obj: tensors, dicts, lists, numbers and strings (what ``torch.load(weights_only=True)`` reads).
        kind: a one-word label (e.g. ``"checkpoint"``), checked on load.
    """
    if not kind.isidentifier():
        raise ValueError(f"kind must be one word, got {kind!r}")
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    header = MAGIC + b" " + kind.encode() + b" " + sha256_bytes(payload).encode() + b"\n"
    return atomic_write_bytes(path, header + payload)


def load_checked(path: str | os.PathLike, kind: str, map_location="cpu"):
    """Load a file written by :func:`save_checked`, verifying kind and checksum first.

    Raises:
        FileNotFoundError: no such file.
        CorruptFileError: wrong format, wrong kind, or a checksum mismatch (truncated or altered file).
            Only a file with kdtutor's header gets the advice to delete it: a foreign file is
            never one kdtutor wrote, so the message says to check the path instead.
    """
    path = Path(path)
    data = path.read_bytes()
    header, sep, payload = data.partition(b"\n")
    parts = header.split(b" ")
    advice = f"delete {path} (kdtutor wrote it) and re-run the step that wrote it"
    if not sep or len(parts) != 3 or parts[0] != MAGIC:
        raise CorruptFileError(f"{path} is not a kdtutor file (it lacks kdtutor's header), so kdtutor did not write "
                               f"it and left it as it is: check the path, or choose another")
    if parts[1].decode(errors="replace") != kind:
        raise CorruptFileError(f"{path} holds a {parts[1].decode(errors='replace')!r}, expected a {kind!r}: "
                               f"check the path, or choose another")
    if sha256_bytes(payload) != parts[2].decode(errors="replace"):
        raise CorruptFileError(f"{path} is corrupt or truncated (checksum mismatch); {advice}")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as e:  # intact bytes, but not something we can read safely
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CorruptFileError(f"{path} is intact but cannot be loaded ({first}); "
                               f"it may come from another version of kdtutor: {advice}") from e



def kept(path: str | os.PathLike, kind: str, identity: dict, make) -> dict:
    """``make()``'s dict, stored at ``path`` (:func:`save_checked`, as ``kind``) together with
    ``identity`` (what it was made from), and loaded from there while ``identity`` is the same. A
    file made from anything else, or corrupt, is moved aside (kept, :func:`move_aside`) with a
    message, and the result is made and stored again. In a folder that cannot be written, the result
    is made and not stored, with a warning given before it is made."""
    path = Path(path)
    if path.exists():
        try:
            saved = load_checked(path, kind=kind)
            if saved["identity"] == identity:
                return saved
            print(f"{path} was made from other inputs: moved to {move_aside(path)}")
        except CorruptFileError as e:
            print(f"cannot use {path} ({e}): moved to {move_aside(path)}")
    if not warn_if_unwritable(path.parent, f"{path.name}"):
        return {"identity": identity, **make()}
    saved = {"identity": identity, **make()}
    save_checked(saved, path, kind=kind)
    return saved

def written_by_kdtutor(path: str | os.PathLike, kind: str | None = None) -> bool:
    """Whether ``path`` is a file with kdtutor's header (of ``kind``, if given); reads only the first line."""
    try:
        with open(path, "rb") as f:
            parts = f.readline(256).rstrip(b"\n").split(b" ")
    except OSError:
        return False
    return len(parts) == 3 and parts[0] == MAGIC and (kind is None or parts[1] == kind.encode())


def save_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically (used for the metrics lessons save)."""
    import json

    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def load_json(path: str | os.PathLike):
    import json

    return json.loads(Path(path).read_text())
