"""The code follows one style: ruff's lint rules as pyproject.toml configures them ([tool.ruff]), on the
package, the course tooling, the tests, the reference answers and the benchmarks (not the lessons,
whose code cells are stamped)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> list[str]:
    try:
        import ruff  # noqa: F401  (the dev extra installs it)
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.skip("ruff is not installed (pip install -e '.[dev]')")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def test_ruff_finds_nothing():
    run = subprocess.run([*_ruff(), "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]


def test_ruff_would_catch_an_unused_import(tmp_path):
    (tmp_path / "bad.py").write_text("import os\n")
    run = subprocess.run([*_ruff(), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"), str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "F401" in run.stdout
