"""A student release for graded use: what learners receive when their notebooks are graded.

    python -m coursetools release DIR [--force]

DIR gets a complete, installable copy of the course (``pip install -e DIR`` or ``make lab``):
the learners' package, the lesson notebooks, the graded homework's notebooks (``homework/``; their
model answers and hidden tests stay in ``instructor/homework/``), ``pyproject.toml`` and the files it names (the README, with the ``docs/`` pages it links), the Binder and
conda set-ups. Left out: ``solutions/`` and ``instructor/`` (the answers), ``tests/`` (they
import the answers), the course tooling (``coursetools``) and the maintainers' files. The release's ``kdtutor`` carries the marker
:data:`kdtutor.checks.core.RELEASE_MARKER`, so ``checks.answer(...)`` and a second ✗ say the
instructor disabled the full answers; the checks' nudges stay.

It does not make the answers secret: ``kdtutor``'s own modules implement the formulas the
lessons call. Graded with ``python -m coursetools grade``, an answer that calls them earns nothing.

DIR must not exist; ``--force`` replaces a previous release (a folder with the marker) or an
empty folder, nothing else. The copy is built next to DIR and moved into place when complete.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from kdtutor.checks.core import RELEASE_MARKER
from kdtutor.storage import REPO_ROOT, atomic_write_bytes, current_umask

# What a learner receives, relative to the repository root (folders are copied whole).
INCLUDE = ("pyproject.toml", "README.md", "docs", "LICENSE", "LICENSE-CONTENT", "environment.yml", "Makefile",
           "binder", "requirements", "data/README.md", "kdtutor", "notebooks", "homework")
SKIP_NAMES = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", RELEASE_MARKER.name}
SKIP_SUFFIXES = (".pyc", ".egg-info")
WITHHELD = ("solutions", "instructor", "tests", "coursetools")  # never in a release (INCLUDE names none of them)
MARKER_PATH = Path("kdtutor") / RELEASE_MARKER.name


def _check_target(target: Path, root: Path, force: bool) -> None:
    """ValueError unless writing the release at ``target`` loses nothing (see the module docstring)."""
    inside = [item for item in INCLUDE if target.is_relative_to((root / item).resolve())]
    if root.resolve().is_relative_to(target) or inside:
        raise ValueError(f"{target}: a release cannot be written over or inside the course it is made from "
                         f"({root}); choose a folder outside it, e.g. ../kdtutor-release")
    if not target.exists():
        return
    if not target.is_dir():
        raise ValueError(f"{target} exists and is not a folder; remove it or choose another DIR")
    if not force:
        raise ValueError(f"{target} already exists; choose a new folder, or pass --force to replace a previous "
                         "release there")
    if any(target.iterdir()) and not (target / MARKER_PATH).exists():
        raise ValueError(f"{target} is not empty and is not a kdtutor release (no {MARKER_PATH}); --force replaces "
                         "only a previous release: remove the folder yourself or choose another DIR")


def _copy(source: Path, dest: Path) -> None:
    """Copy the file or folder ``source`` to ``dest``, new files and folders with the umask's modes."""
    if source.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        if source.stat().st_mode & 0o111:  # scripts such as binder/postBuild stay executable
            dest.chmod(0o777 & ~current_umask())
        return
    for child in sorted(source.iterdir()):
        if child.name not in SKIP_NAMES and not child.name.endswith(SKIP_SUFFIXES):
            _copy(child, dest / child.name)


def release(target: str | os.PathLike, force: bool = False, root: Path = REPO_ROOT) -> Path:
    """Write the student release of the course at ``root`` into the folder ``target``; return it."""
    target = Path(target).expanduser().resolve()
    _check_target(target, root, force)
    missing = [item for item in INCLUDE if not (root / item).exists()]
    if missing:
        raise ValueError(f"{root} is not a complete course checkout: missing {', '.join(missing)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build.chmod(0o777 & ~current_umask())
        for item in INCLUDE:
            _copy(root / item, build / item)
        marker = {"answers": "disabled", "written_by": "python -m coursetools release", "withheld": list(WITHHELD)}
        atomic_write_bytes(build / MARKER_PATH, (json.dumps(marker, indent=1) + "\n").encode())
        if target.exists():  # --force, checked above: swap the previous release out, then delete it
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent)) / target.name
            target.rename(old)
            try:
                build.rename(target)
            except BaseException:
                old.rename(target)
                raise
            shutil.rmtree(old.parent)
        else:
            build.rename(target)
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return target


def summary(target: Path) -> str:
    """One line on what the release at ``target`` holds."""
    lessons = sorted(p.name for p in (target / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    return (f"wrote a student release to {target}: {len(lessons)} lessons and the kdtutor package, full answers "
            f"disabled; without {', '.join(d + '/' for d in WITHHELD)}")
