"""The repository itself: declared dependencies agree, notebooks are stored as nbval expects."""

import re
from importlib.metadata import requires
from pathlib import Path

import nbformat
import pytest

from kdtutor.classroom.course import CHECK_MARK, is_checked, notebooks

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_names_the_same_dependencies_as_pyproject():
    # the installed metadata is pyproject's [project] dependencies + extras, with markers
    declared = {r.split(";")[0].replace(" ", "") for r in requires("kdtutor")}
    text = (ROOT / "environment.yml").read_text()
    pip_section = text.split("- pip:", 1)[1]
    listed = {line.strip()[2:].strip() for line in pip_section.splitlines() if line.strip().startswith("- ")}
    listed.discard("-e .")
    assert listed == declared, f"only in environment.yml: {listed - declared}; only in pyproject: {declared - listed}"


def test_name_parsing_would_catch_a_missing_package():
    assert _name("torch>=2.3") == "torch" and _name("nbval") == "nbval"


def test_there_are_lessons():
    names = [p.name for p in notebooks()]
    assert names and names[0].startswith("00_"), names


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_stores_only_checked_outputs(path):
    nb = nbformat.read(path, as_version=4)
    checked = [c for c in nb.cells if is_checked(c)]
    assert checked, f"{path.name} has no '{CHECK_MARK}' cell, so nbval compares nothing"
    assert any(c.outputs and c.execution_count for c in checked), \
        f"{path.name}: checked cells carry no stored outputs (run python -m kdtutor refresh-notebooks)"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.outputs:
            assert out.output_type != "error", f"{path.name} cell {i} is stored with an error"
        if not is_checked(cell):
            assert not cell.outputs and cell.execution_count is None, \
                f"{path.name} cell {i} is not marked {CHECK_MARK} but is stored with outputs"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_never_shows_standin_numbers_as_cifar10(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in getattr(cell, "outputs", []):
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            if "CIFAR-10" in text and re.search(r"\d+(\.\d+)?\s?%", text):
                assert "stand-in" in text.lower() or "not cifar-10" in text.lower(), \
                    f"{path.name}: an output reports a percentage next to 'CIFAR-10': {text[:200]}"
