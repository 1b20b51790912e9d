"""The repository itself: declared dependencies agree, notebooks are stored as nbval expects."""

import re
from importlib.metadata import requires
from pathlib import Path

import nbformat
import pytest

from coursetools.course import CHECK_MARK, is_checked, notebooks

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
def test_notebook_stores_the_smoke_outputs_nbval_compares_and_no_error(path):
    nb = nbformat.read(path, as_version=4)
    checked = [c for c in nb.cells if is_checked(c)]
    assert checked, f"{path.name} has no '{CHECK_MARK}' cell, so nbval compares nothing"
    assert any(c.outputs and c.execution_count for c in checked), \
        f"{path.name}: checked cells carry no stored outputs (run python -m coursetools refresh-notebooks)"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{path.name} cell {i} is stored with an error"
        if is_checked(cell):
            assert cell.metadata["kdtutor"]["output"]["profile"] == "smoke", f"{path.name} cell {i}"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_notebook_never_shows_numbers_as_official_cifar10(path):
    # a stored percentage next to "CIFAR-10" names the data it came from: the stand-in, or the JPEG copy
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in getattr(cell, "outputs", []):
            text = str(out.get("text", "")) + str(out.get("data", {}).get("text/plain", ""))
            if "CIFAR-10" in text and re.search(r"\d+(\.\d+)?\s?%", text):
                plain = text.replace("CIFAR-10 (JPEG copy)", "").replace("JPEG copy of CIFAR-10", "")
                labelled = "stand-in" in text.lower() or "not cifar-10" in text.lower() or "CIFAR-10" not in plain
                assert labelled, f"{path.name}: an output reports a percentage next to plain 'CIFAR-10': {text[:200]}"


def test_the_official_cifar10_check_would_catch_an_unlabelled_number(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.v4.new_output("stream", text="teacher on CIFAR-10: 82.6 %\n")])])
    path = tmp_path / "99_unlabelled.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(AssertionError, match="plain 'CIFAR-10'"):
        test_notebook_never_shows_numbers_as_official_cifar10(path)


def test_the_licences_are_stated_where_users_look():
    """Code under MIT, lesson text and figures under CC BY 4.0: in LICENSE, LICENSE-CONTENT,
    pyproject.toml, the README, the website's footer and every student release."""
    from coursetools.release import INCLUDE

    assert "MIT License" in (ROOT / "LICENSE").read_text() and "LICENSE-CONTENT" in (ROOT / "LICENSE").read_text()
    assert "creativecommons.org/licenses/by/4.0" in (ROOT / "LICENSE-CONTENT").read_text()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^license = \{text = "MIT \(code\); CC-BY-4.0', pyproject, re.M), "pyproject.toml names no licence"
    licence = (ROOT / "README.md").read_text().split("\n## Licence\n", 1)
    assert len(licence) == 2 and "MIT" in licence[1] and "CC BY 4.0" in licence[1]
    conf = (ROOT / "book" / "conf.py").read_text()
    assert "extra_footer" in conf and "CC BY 4.0" in conf and "MIT licence" in conf
    assert {"LICENSE", "LICENSE-CONTENT"} <= set(INCLUDE)
