"""Installing the course: what the lessons need only, CPU-only PyTorch where it fits, the
workshop's pinned versions, an offline wheelhouse, and the no-make (Windows) commands.

Nothing here downloads or installs anything: the network check, ``nvidia-smi``, pip and
JupyterLab are replaced by fakes, and the commands they would have run are checked.
"""

import os
import re
import shutil
import subprocess
import sys
import urllib.error
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from kdtutor import __main__ as cli
from kdtutor import storage
from coursetools import delivery
from coursetools import prepare as workshop
from kdtutor import machine
from kdtutor.machine import CPU_INDEX, ROOT, TorchChoice

try:
    import tomllib
except ImportError:  # Python 3.10: the same parser, as pip ships it
    from pip._vendor import tomli as tomllib

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TOOLS = {"pytest", "nbval", "hypothesis", "torchmetrics", "nbgrader", "sphinx", "myst-nb", "sphinx-book-theme",
         "sphinx-mathjax-offline", "playwright", "uv", "pip-tools"}


def _never():
    raise AssertionError("should not have been asked")


def _fake_run(calls, status=0):
    def run(command, **kw):
        calls.append(command)
        return SimpleNamespace(returncode=status)
    return run


# --------------------------------------------------------------------------- which PyTorch wheels
def test_linux_without_a_gpu_takes_the_cpu_wheels_when_the_cpu_index_answers():
    choice = machine.choose_torch("auto", system="Linux", gpu=lambda: False, reachable=lambda: True)
    assert choice.wheels == "cpu" and CPU_INDEX in choice.reason


def test_an_unreachable_cpu_index_falls_back_to_the_default_wheels_and_says_so():
    choice = machine.choose_torch("auto", system="Linux", gpu=lambda: False, reachable=lambda: False)
    assert choice.wheels == "default"
    assert "FALLING BACK" in choice.reason and CPU_INDEX in choice.reason and "CUDA" in choice.reason


def test_a_gpu_machine_keeps_the_cuda_wheels_without_asking_the_network():
    choice = machine.choose_torch("auto", system="Linux", gpu=lambda: True, reachable=_never)
    assert choice.wheels == "default" and "NVIDIA GPU" in choice.reason


@pytest.mark.parametrize("system", ["Windows", "Darwin"])
def test_windows_and_macos_take_the_default_wheels_which_carry_no_cuda(system):
    assert machine.choose_torch("auto", system=system, gpu=_never, reachable=_never).wheels == "default"


def test_asking_for_cpu_wheels_insists_and_fails_clearly_when_the_index_is_unreachable():
    assert machine.choose_torch("cpu", system="Linux", gpu=_never, reachable=lambda: True).wheels == "cpu"
    with pytest.raises(SystemExit, match="--torch cpu: https://download.pytorch.org/whl/cpu could not be reached"):
        machine.choose_torch("cpu", system="Linux", gpu=_never, reachable=lambda: False)
    assert machine.choose_torch("default", system="Linux", gpu=_never, reachable=_never).wheels == "default"
    with pytest.raises(ValueError, match="'auto', 'cpu' or 'default'"):
        machine.choose_torch("cuda")


def test_the_gpu_probe_reads_nvidia_smi_and_survives_its_absence_or_failure():
    listed = SimpleNamespace(returncode=0, stdout="GPU 0: NVIDIA H200 (UUID: GPU-1)\n")
    assert machine.has_nvidia_gpu(which=lambda name: "/usr/bin/nvidia-smi", run=lambda *a, **k: listed) is True
    assert machine.has_nvidia_gpu(which=lambda name: None, run=_never) is False
    no_driver = SimpleNamespace(returncode=9, stdout="NVIDIA-SMI has failed\n")
    assert machine.has_nvidia_gpu(which=lambda name: "nvidia-smi", run=lambda *a, **k: no_driver) is False

    def hangs(*a, **k):
        raise subprocess.TimeoutExpired("nvidia-smi", 10)
    assert machine.has_nvidia_gpu(which=lambda name: "nvidia-smi", run=hangs) is False


def test_the_reachability_check_is_one_short_head_request():
    seen = []

    class Reply:
        status = 200
        def __enter__(self): return self
        def __exit__(self, *exc): return False

    def answers(request, timeout):
        seen.append((request.get_method(), request.full_url, timeout))
        return Reply()

    def unreachable(request, timeout):
        raise urllib.error.URLError("Name or service not known")

    assert machine.index_reachable(CPU_INDEX, timeout=2.5, urlopen=answers) is True
    assert seen == [("HEAD", "https://download.pytorch.org/whl/cpu/torch/", 2.5)]
    assert machine.index_reachable(CPU_INDEX, urlopen=unreachable) is False

    def times_out(request, timeout):
        raise TimeoutError("timed out")
    assert machine.index_reachable(CPU_INDEX, urlopen=times_out) is False


# --------------------------------------------------------------------------- the pip commands
def test_cpu_wheels_install_torch_alone_from_the_cpu_index_then_the_course():
    cmds = machine.install_commands(TorchChoice("cpu", ""), python="py", root=Path("/c"))
    assert cmds == [["py", "-m", "pip", "install", "--no-deps", "--index-url", CPU_INDEX, "torch>=2.3", "torchvision>=0.18"],
                    ["py", "-m", "pip", "install", "--editable", "/c"]]


def test_extras_constraints_and_a_wheelhouse_reach_every_pip_command():
    cmds = machine.install_commands(TorchChoice("cpu", ""), extras=["dev", "book"], constraints="pins.txt",
                                    python="py", root=Path("/c"))
    assert all(c[4:6] == ["--constraint", "pins.txt"] for c in cmds) and cmds[-1][-1] == "/c[dev,book]"
    offline = machine.install_commands(TorchChoice("cpu", ""), constraints="pins.txt", wheelhouse="wh", python="py",
                                       root=Path("/c"))
    assert offline == [["py", "-m", "pip", "install", "--constraint", "pins.txt", "--no-index", "--find-links", "wh",
                        "--editable", "/c"]]  # the wheelhouse already holds the CPU wheels: no index at all


def test_the_fallback_is_the_plain_install_that_make_test_runs_on_this_machine(monkeypatch):
    # this machine reaches PyPI only: the CPU index is "unreachable", so pip installs the course
    # with the default wheels (here the local CUDA build the /etc/xdg/pip constraints allow)
    calls, lines = [], []
    assert machine.install(run=_fake_run(calls), out=lines.append, system="Linux", gpu=lambda: False,
                           reachable=lambda: False) == 0
    assert calls == [[sys.executable, "-m", "pip", "install", "--editable", str(ROOT)]]
    assert lines[0].startswith("PyTorch: no NVIDIA GPU") and "FALLING BACK" in lines[0]
    assert lines[1] == f"$ {sys.executable} -m pip install --editable {ROOT}"
    # said again at the end, below pip's output, with the size and the command that avoids it
    assert lines[-1] == f"NOTE: {lines[0].removeprefix('PyTorch: ')}" and "4 GB" in lines[-1]
    assert f"--index-url {CPU_INDEX} torch torchvision" in lines[-1]


def test_a_cpu_install_is_not_repeated_as_a_fallback():
    lines = []
    assert machine.install(run=_fake_run([]), out=lines.append, system="Linux", gpu=lambda: False,
                           reachable=lambda: True) == 0
    assert not any(line.startswith("NOTE:") for line in lines)


def test_prepare_warns_about_a_cuda_build_on_a_machine_without_an_nvidia_gpu():
    row = machine.torch_build_row("13.0", system="Linux", gpu=lambda: False)
    assert row[1] == "WARN" and "4 GB" in row[2] and f"--index-url {CPU_INDEX}" in row[2]
    assert machine.torch_build_row("13.0", system="Linux", gpu=lambda: True)[1] == "PASS"
    assert machine.torch_build_row(None, system="Linux", gpu=_never)[1:] == ("PASS", "CPU-only build")
    assert machine.torch_build_row("12.8", system="Windows", gpu=_never)[1] == "PASS"


def test_install_stops_at_the_first_failing_pip_command():
    calls, lines = [], []
    status = machine.install(run=_fake_run(calls, status=1), out=lines.append, system="Linux", gpu=lambda: False,
                             reachable=lambda: True)
    assert status == 1 and len(calls) == 1 and "--no-deps" in calls[0] and lines[-1].startswith("failed (exit status 1)")


def test_a_missing_wheelhouse_or_an_unknown_extra_is_refused_before_pip_runs(tmp_path):
    with pytest.raises(SystemExit, match="no such folder"):
        machine.install(wheelhouse=tmp_path / "nope", run=_never)
    with pytest.raises(SystemExit, match="--extras tests: not an extra of kdtutor"):
        machine.install(extras=["dev", "tests"], run=_never, gpu=_never, reachable=_never)
    assert set(machine.EXTRAS) == set(PYPROJECT["optional-dependencies"])


def test_the_torch_requirements_are_pyprojects_and_root_is_storages():
    declared = {Requirement(r).name: str(Requirement(r).specifier) for r in PYPROJECT["dependencies"]}
    assert {Requirement(r).name: str(Requirement(r).specifier) for r in machine.TORCH_REQUIREMENTS} == \
        {name: declared[name] for name in ("torch", "torchvision")}
    assert machine.ROOT == storage.REPO_ROOT


# --------------------------------------------------------------------------- learners get the lessons' packages only
def test_the_lessons_dependencies_hold_no_test_or_website_tool():
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["dependencies"]}
    assert runtime & TOOLS == set()
    extras = PYPROJECT["optional-dependencies"]
    assert {"pytest", "nbval", "hypothesis", "torchmetrics"} <= {Requirement(r).name for r in extras["dev"]}
    assert {"sphinx", "myst-nb", "playwright"} <= {Requirement(r).name for r in extras["book"]}


@pytest.mark.skipif(shutil.which("make") is None, reason="no make here (Windows): python -m kdtutor covers it")
def test_make_installs_extras_only_for_test_and_book(tmp_path):
    def plan(target):
        return subprocess.run(["make", "-n", "--no-print-directory", "-C", str(ROOT), target, f"VENV={tmp_path / 'venv'}"],
                              capture_output=True, text=True, check=True).stdout

    for target, last in [("lab", "-m kdtutor lab"), ("course", "-m coursetools course"), ("prepare", "-m kdtutor prepare")]:
        out = plan(target)
        assert "-m kdtutor install --torch auto" in out and "[dev" not in out and "[book" not in out, out
        assert out.strip().splitlines()[-1].startswith(f"{tmp_path / 'venv'}/bin/python {last}"), out
    assert '-e ".[dev,book]"' in plan("test") and '-e ".[book]"' in plan("book")
    assert "id -u" not in (ROOT / "Makefile").read_text()


def test_colab_and_binder_install_the_lessons_packages_only():
    setup = delivery.setup_source(["images"], delivery.config())
    assert '"-m", "pip", "install", "--quiet", "-e", home)' in setup  # no [extras]
    post = (ROOT / "binder" / "postBuild").read_text()
    assert re.search(r"pip install [^\n]*--constraint requirements/workshop.txt -e \.$", post, re.M)
    assert "[dev" not in post and "[book" not in post
    text = (ROOT / "binder" / "requirements.txt").read_text()
    binder = {Requirement(line).name for line in text.splitlines() if line.strip() and not line.startswith(("#", "-"))}
    assert binder == {"torch", "torchvision"} and f"--extra-index-url {CPU_INDEX}" in text
    pins = re.search(r"^--constraint (\S+)$", text, re.M).group(1)  # pip reads it relative to binder/
    assert (ROOT / "binder" / pins).resolve() == workshop.WORKSHOP_PINS


# --------------------------------------------------------------------------- the workshop's pinned versions
def _pins(path=workshop.WORKSHOP_PINS):
    """``[Requirement]`` of a uv/pip-compile output (``name==version ; marker``), comments dropped."""
    return [Requirement(line) for line in path.read_text().splitlines() if line and not line.startswith((" ", "#"))]


def _pins_here():
    """``{name: version}`` of the pins whose marker applies to this Python and platform."""
    out = {}
    for r in _pins():
        if r.marker is None or r.marker.evaluate():
            assert canonicalize_name(r.name) not in out, f"two pins for {r.name} apply here"
            out[canonicalize_name(r.name)] = next(iter(r.specifier)).version
    return out


def test_every_pin_is_exact_and_every_runtime_dependency_is_pinned_within_pyprojects_range():
    pins = _pins()
    assert pins and all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "==" for r in pins)
    for dep in map(Requirement, PYPROJECT["dependencies"]):
        versions = [next(iter(r.specifier)).version for r in pins if canonicalize_name(r.name) == canonicalize_name(dep.name)]
        assert versions, f"{dep.name} is not pinned in {workshop.WORKSHOP_PINS}: run make lock"
        for v in versions:
            assert dep.specifier.contains(v, prereleases=True), f"{dep.name}=={v} is outside pyproject's {dep}"
    assert {canonicalize_name(r.name) for r in pins} & (TOOLS - {"nbgrader"}) == set()  # a learner's set


def test_the_pins_check_would_notice_a_pin_outside_the_range():
    assert not Requirement("torch>=2.3").specifier.contains("2.2.2")


def test_torch_is_pinned_to_the_versions_the_gpu_machines_test():
    wanted = {r.name: str(r.specifier) for r in _pins(ROOT / "requirements" / "workshop.in")}
    assert wanted == {"torch": "==2.11.0", "torchvision": "==0.26.0"}
    assert {r.name: str(r.specifier) for r in _pins() if r.name in wanted} == wanted


def test_the_pins_are_what_make_lock_generates():
    header = workshop.WORKSHOP_PINS.read_text().splitlines()[:2]
    assert header[0] == "# This file was autogenerated by uv via the following command:"
    command = header[1].lstrip("# ").strip()
    recipe = (ROOT / "Makefile").read_text().split("\nlock:", 1)[1]
    assert f"$(BIN)/{command}" in recipe, f"requirements/workshop.txt was made by {command!r}, not by make lock"


def test_no_package_the_pins_need_is_missing():
    # every package the annotations say something needs ("# via X") is pinned itself
    text = workshop.WORKSHOP_PINS.read_text()
    pinned = {canonicalize_name(r.name) for r in _pins()}
    via = set(re.findall(r"^    # via (\S+)$", text, re.M)) | set(re.findall(r"^    #   (\S+)$", text, re.M))
    inputs = {"kdtutor", "kdtutor (pyproject.toml)", "-r", "pyproject.toml"}
    needed = {canonicalize_name(v) for v in via if v not in inputs and not v.startswith(("-r", "pyproject"))}
    assert needed - pinned == set()
    # and, for the packages installed here at exactly the pinned version, everything they require
    # on this platform is pinned too (the resolution uv made, checked against real metadata)
    from importlib.metadata import PackageNotFoundError, distribution

    here = _pins_here()
    exact = []
    for name, version in here.items():
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue
        if dist.version == version:
            exact.append(dist)
    if len(exact) < 20:  # an environment installed long after the pins were made (here: 126 of 136 match)
        pytest.skip(f"only {len(exact)} packages are installed here at their pinned version; "
                    f"install with PINS=requirements/workshop.txt to check the pins against their metadata")
    for dist in exact:
        for req in map(Requirement, dist.requires or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                assert canonicalize_name(req.name) in here, \
                    f"{dist.name}=={dist.version} needs {req}, not pinned for this platform"


# --------------------------------------------------------------------------- the wheelhouse
def test_the_wheelhouse_takes_the_cpu_torch_first_then_everything_else_at_the_pins(tmp_path):
    calls, lines = [], []
    status = workshop.make_wheelhouse(tmp_path / "wh", run=_fake_run(calls), out=lines.append, system="Linux",
                                     reachable=lambda: True)
    pins, wh = str(workshop.WORKSHOP_PINS), str(tmp_path / "wh")
    download = [sys.executable, "-m", "pip", "download", "--dest", wh, "--constraint", pins]
    assert status == 0 and calls == [
        download + ["--no-deps", "--index-url", CPU_INDEX, "torch>=2.3", "torchvision>=0.18"],
        download + ["--find-links", wh, "setuptools>=64", str(ROOT)]]
    assert f"python -m kdtutor install --wheelhouse {wh} --constraints {pins}" in lines[-1]


def test_the_wheelhouse_is_for_the_room_so_this_machines_gpu_does_not_matter(tmp_path):
    calls = []
    workshop.make_wheelhouse(tmp_path / "wh", run=_fake_run(calls), out=lambda s: None, system="Linux",
                            reachable=lambda: True)  # gpu is never asked (has_nvidia_gpu would say yes on a GPU box)
    assert CPU_INDEX in calls[0]
    calls.clear()
    workshop.make_wheelhouse(tmp_path / "wh2", run=_fake_run(calls), out=lambda s: None, system="Linux",
                            reachable=lambda: False)
    assert len(calls) == 1 and CPU_INDEX not in calls[0]  # fallback: the default wheels, said in the output


def test_the_wheelhouse_never_adds_to_a_folder_with_files_unless_told(tmp_path):
    folder = tmp_path / "wh"
    folder.mkdir()
    (folder / "numpy-2.0-cp311.whl").write_text("kept")
    with pytest.raises(SystemExit, match="already holds files; pass --add"):
        workshop.make_wheelhouse(folder, run=_never, reachable=_never)
    calls = []
    assert workshop.make_wheelhouse(folder, add=True, run=_fake_run(calls), out=lambda s: None, system="Linux",
                                   reachable=lambda: True) == 0
    assert len(calls) == 2 and (folder / "numpy-2.0-cp311.whl").read_text() == "kept"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert workshop.make_wheelhouse(empty, run=_fake_run([]), out=lambda s: None, system="Linux",
                                   reachable=lambda: True) == 0
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(SystemExit, match="is a file, not a folder"):
        workshop.make_wheelhouse(tmp_path / "a_file", run=_never)
    with pytest.raises(SystemExit, match="no pinned versions"):
        workshop.make_wheelhouse(tmp_path / "new", pins=tmp_path / "no-pins.txt", run=_never)


# --------------------------------------------------------------------------- python -m kdtutor (no make)
def test_wheelhouse_dry_run_from_the_command_line_runs_nothing(tmp_path, monkeypatch, capsys):
    from coursetools.__main__ import main as tools

    monkeypatch.setattr(machine, "index_reachable", lambda: True)
    monkeypatch.setattr(machine.platform, "system", lambda: "Linux")
    monkeypatch.setattr(machine.subprocess, "run", _never)
    assert tools(["wheelhouse", str(tmp_path / "wh"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"--index-url {CPU_INDEX}" in out and "would fill" in out and not (tmp_path / "wh").exists()
    with pytest.raises(SystemExit):
        cli.main(["prepare", "--add"])  # the learner's prepare has no wheelhouse options


def test_install_from_the_command_line_passes_extras_and_pins(monkeypatch, capsys):
    monkeypatch.setattr(machine, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(machine.platform, "system", lambda: "Linux")
    monkeypatch.setattr(machine.subprocess, "run", _never)
    assert cli.main(["install", "--extras", "dev,book", "--constraints", "requirements/workshop.txt", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == (f"$ {sys.executable} -m pip install --constraint requirements/workshop.txt "
                       f"--editable '{ROOT}[dev,book]'")


@pytest.mark.parametrize("as_root", [True, False])
def test_lab_starts_jupyterlab_on_the_lessons_with_allow_root_only_as_root(monkeypatch, as_root, tmp_path):
    monkeypatch.setattr(cli.os, "name", "posix")
    monkeypatch.setattr(cli.os, "geteuid", lambda: 0 if as_root else 1000, raising=False)
    calls = []
    assert cli.lab(run=_fake_run(calls), work=tmp_path) == 0
    assert calls == [[sys.executable, "-m", "jupyterlab", str(tmp_path)] + (["--allow-root"] if as_root else [])]


def test_lab_on_windows_never_asks_for_a_user_id(monkeypatch):
    monkeypatch.setattr(cli.os, "name", "nt")
    monkeypatch.delattr(cli.os, "geteuid", raising=False)  # Windows has none
    assert cli.lab_command("nb", python="py") == ["py", "-m", "jupyterlab", "nb"]


def test_lab_from_the_command_line_and_a_missing_folder(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setattr(cli.subprocess, "run", _fake_run(calls, status=3))
    assert cli.main(["lab", "--notebooks", str(tmp_path)]) == 3  # JupyterLab's exit status
    assert calls[0][:4] == [sys.executable, "-m", "jupyterlab", str(tmp_path)]
    with pytest.raises(SystemExit, match="no lessons at"):
        cli.main(["lab", "--notebooks", str(tmp_path / "nope")])


def test_jupyterlab_can_be_started_as_a_module():
    import importlib.util

    assert importlib.util.find_spec("jupyterlab.__main__") is not None


def test_lab_gives_its_kernels_kdtutors_cpu_settings_unless_the_user_set_them(monkeypatch, tmp_path):
    import kdtutor
    envs = []

    def run(command, env=None, **kw):
        envs.append(env)
        return SimpleNamespace(returncode=0)

    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    cli.lab(run=run, work=tmp_path)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    cli.lab(run=run, work=tmp_path)
    assert envs[0]["OMP_WAIT_POLICY"] == kdtutor.CPU_ENVIRONMENT["OMP_WAIT_POLICY"] == "PASSIVE"
    assert envs[1]["OMP_WAIT_POLICY"] == "ACTIVE" and envs[0]["PATH"] == os.environ["PATH"]


def test_the_learners_work_never_touches_the_courses_notebooks(tmp_path, capsys):
    """make lab opens working copies: a lesson run and saved there leaves notebooks/ byte for byte as it
    was; a second lab keeps the learner's copy; --reset brings the course's back and keeps the learner's."""
    import hashlib

    import nbformat

    source = ROOT / "notebooks"
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.ipynb")}
    work = tmp_path / "my-lessons"
    copied = machine.working_copies(source, work)
    assert sorted(p.name for p in copied) == sorted(before)
    mine = work / "03_teacher_training.ipynb"
    nb = nbformat.read(mine, as_version=4)  # what JupyterLab's save writes after a run: new outputs
    nb.cells[0].source += "\n\nmy note"
    nbformat.write(nb, mine)
    assert machine.working_copies(source, work) == []  # nothing copied over the learner's work
    assert "my note" in mine.read_text()
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in source.glob("*.ipynb")} == before
    kept = machine.reset_lesson("03", source, work)
    assert kept == work / "03_teacher_training.mine-1.ipynb" and "my note" in kept.read_text()
    assert "my note" not in mine.read_text() and machine.reset_lesson("03", source, work).name.endswith(".mine-2.ipynb")
    with pytest.raises(SystemExit, match="name a lesson by its number"):
        machine.reset_lesson("3", source, work)


def test_a_copy_the_course_has_since_changed_is_named(tmp_path):
    source, work = tmp_path / "course", tmp_path / "mine"
    source.mkdir()
    (source / "01_x.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    machine.working_copies(source, work)
    (source / "01_x.ipynb").write_text('{"cells": [], "metadata": {"v": 2}, "nbformat": 4, "nbformat_minor": 5}')
    lines = []
    assert machine.working_copies(source, work, out=lines.append) == []
    assert lines and lines[0].startswith("01: the course's lesson changed") and "--reset 01" in lines[0]


def test_install_and_lab_run_before_pytorch_is_installed(monkeypatch, capsys, tmp_path):
    """make lab's first step, python -m kdtutor install, runs in a fresh venv without torch: the command
    line imports nothing that needs it (CI caught a profile check that did)."""
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    for name in [m for m in sys.modules if m == "kdtutor.profiles" or m.startswith("kdtutor.images")]:
        monkeypatch.delitem(sys.modules, name)  # as in a fresh process: importing them would import torch
    monkeypatch.setattr(machine.platform, "system", lambda: "Linux")
    monkeypatch.setattr(machine, "has_nvidia_gpu", lambda: True)
    monkeypatch.setattr(machine.subprocess, "run", _never)
    assert cli.main(["install", "--dry-run"]) == 0
    assert "pip install" in capsys.readouterr().out
    with pytest.raises(ImportError):
        import torch  # noqa: F401  (the stand-in really hides it)
