"""Get this machine ready for the lessons: ``python -m kdtutor install``, ``prepare``, ``lab``.

``prepare [--profile P]`` checks the environment (Python, torch and torchvision versions, the
device and the mixed precision it will use, free disk space, write access to the data and
results folders) and fetches or imports the data the profile needs and verifies it: the images
(the stand-in for ``smoke``; CIFAR-10 for ``cpu``/``gpu``, from ``$KDTUTOR_CIFAR10`` if set,
else downloaded and checksummed) and lesson 07's text (``$KDTUTOR_TEXT``, else downloaded).
It prints one table of PASS / WARN / FAIL rows and returns 1 if any row failed. Everything it
writes goes through the course's caches, written atomically and reused when valid.

Installing, with or without ``make`` (this part uses only the standard library, so it runs
from a checkout before anything is installed): ``python -m kdtutor install [--extras dev,book]``
(``make lab`` runs it) installs only what the lessons need, plus the extras asked for. On Linux
without an NVIDIA GPU it first installs PyTorch's CPU-only wheels from ``CPU_INDEX`` where that
index answers, and says so and takes the default wheels (with CUDA libraries) where it does not
(``choose_torch``). A workshop's offline wheelhouse and pre-training are course tooling
(``python -m coursetools wheelhouse|pretrain``).
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

MIN_FREE_GB = 2.0
MIN_VERSIONS = {"python": (3, 10), "torch": (2, 3), "torchvision": (0, 18)}  # as pyproject.toml


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split("+")[0].split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def version_row(name: str, version: str) -> tuple[str, str, str]:
    need = MIN_VERSIONS[name]
    ok = _version_tuple(version) >= need
    return (name, "PASS" if ok else "FAIL", f"{version} (needs ≥ {'.'.join(map(str, need))})")


def torch_build_row(cuda_build: str | None, system: str | None = None, gpu=None) -> tuple[str, str, str]:
    """WARN where PyTorch is a CUDA build (``torch.version.cuda``) on Linux without an NVIDIA GPU: the
    install fell back to the default wheels, ~4 GB of CUDA libraries this machine cannot use."""
    system = system or platform.system()
    if cuda_build is None:
        return ("wheels", "PASS", "CPU-only build")
    if system != "Linux" or (gpu or has_nvidia_gpu)():
        return ("wheels", "PASS", f"CUDA {cuda_build} build")
    return ("wheels", "WARN", f"CUDA {cuda_build} build on a machine without an NVIDIA GPU: about 4 GB of "
                                   f"CUDA libraries it cannot use. {SWITCH_TO_CPU}")


def device_row() -> tuple[str, str, str]:
    import torch

    from kdtutor.precision import amp_dtype, dtype_name
    from kdtutor.profiles import get_profile

    default = os.environ.get("KDTUTOR_PROFILE") or get_profile().name
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        return ("device", "PASS", f"CUDA: {name}; mixed precision {dtype_name(amp_dtype('cuda'))}; "
                                  f"default profile {default}")
    return ("device", "PASS", f"CPU ({os.cpu_count()} cores), no CUDA GPU; default profile {default}")


def disk_row(folder: Path, min_gb: float = MIN_FREE_GB) -> tuple[str, str, str]:
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1e9
    return ("disk", "PASS" if free >= min_gb else "FAIL", f"{free:.1f} GB free at {probe} (needs ≥ {min_gb:g} GB)")


def write_row(label: str, folder: Path) -> tuple[str, str, str]:
    """Can we create ``folder`` and write a file in it? (Leaves the folder, removes the file.)"""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".prepare-"):
            pass
    except OSError as e:
        return (f"write {label}", "FAIL", f"{folder}: {e}")
    return (f"write {label}", "PASS", str(folder))


def images_row(profile) -> tuple[str, str, str]:
    """The images the profile uses, loaded and checked. ``$KDTUTOR_CIFAR10``, once set, is always
    loaded and must work, whatever the profile (the smoke profile's stand-in does not hide a bad copy)."""
    from kdtutor.images.data import CIFAR10_ENV, load_cifar10_copy, load_dataset

    where = os.environ.get(CIFAR10_ENV, "").strip()
    try:
        copy = load_cifar10_copy(where, progress=False) if where and profile.dataset != "cifar10" else None
        data = load_dataset(profile, role="teacher", verbose=False)
    except Exception as e:  # a corrupt archive, a wrong path: say so
        return ("images", "FAIL", f"{type(e).__name__}: {e}")
    detail = f"{data.name}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test images"
    if where:
        detail += f" from ${CIFAR10_ENV}={where}" if not data.is_standin else (
            f"; ${CIFAR10_ENV}={where} also checked: {copy.name}, "
            f"{len(copy.train) + len(copy.val) + len(copy.test)} images")
    if profile.dataset != "standin" and data.is_standin:
        return ("images", "FAIL", f"CIFAR-10 unavailable, the lessons would fall back to the stand-in; "
                                  f"set {CIFAR10_ENV} to a local copy ({detail})")
    return ("images", "PASS", detail)


def text_row(profile) -> tuple[str, str, str]:
    """Lesson 07's text for the profile, checked to be a readable text long enough for its windows;
    ``$KDTUTOR_TEXT``, once set, must be usable whatever the profile."""
    from kdtutor.lm.lesson import lesson_text
    from kdtutor.lm.text import TEXT_ENV

    try:
        text = lesson_text(profile.name, verbose=False)
    except Exception as e:
        return ("text", "FAIL", f"{type(e).__name__}: {e}")
    detail = f"{text.name}: {text.train.numel() + text.val.numel() + text.test.numel():,d} characters"
    if text.is_standin and profile.name != "smoke":
        return ("text", "FAIL", f"tiny Shakespeare unavailable, lesson 07 would use a stand-in; set {TEXT_ENV} "
                                f"to a local copy ({detail})")
    return ("text", "PASS", detail)


def format_table(rows) -> str:
    widths = [max(len(r[i]) for r in rows + [("check", "result", "")]) for i in range(2)]
    lines = [f"{'check':<{widths[0]}}  {'result':<{widths[1]}}  detail"]
    lines += [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def prepare(profile_name: str | None = None, data_only: bool = False, needs=None, out=print,
            then=None) -> int:
    """Run the checks (see the module docstring), print the table; 0 if nothing failed, else 1.
    ``then(profile)``, if given, adds rows after the checks pass."""
    import torch
    import torchvision

    from kdtutor.profiles import get_profile
    from kdtutor.storage import DATA_DIR, RESULTS_DIR

    profile = get_profile(profile_name)
    needs = set(needs or ("images", "text"))
    t0 = time.perf_counter()
    rows = []
    if not data_only:
        rows += [version_row("python", ".".join(map(str, sys.version_info[:3]))),
                 version_row("torch", torch.__version__), version_row("torchvision", torchvision.__version__),
                 torch_build_row(torch.version.cuda), device_row(), disk_row(DATA_DIR), write_row("data", DATA_DIR), write_row("results", RESULTS_DIR)]
    if "images" in needs:
        rows.append(images_row(profile))
    if "text" in needs:
        rows.append(text_row(profile))
    if then is not None:  # more rows once the checks pass (coursetools' pretrain: every lesson run once)
        if any(r[1] == "FAIL" for r in rows):
            rows.append(("pretrain", "FAIL", "skipped: fix the failed checks above first"))
        else:
            rows += then(profile)
    rows.append(("total", "PASS" if all(r[1] != "FAIL" for r in rows) else "FAIL",
                 f"profile {profile.name}, {time.perf_counter() - t0:.0f} s"))
    out(format_table(rows))
    return 0 if rows[-1][1] == "PASS" else 1


# --------------------------------------------------------------------------- installing (standard library only)
# The checkout (pyproject.toml, notebooks/, requirements/): storage.REPO_ROOT, found here without
# importing storage, which needs torch, since this part runs before torch is installed.
ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_REQUIREMENTS = ("torch>=2.3", "torchvision>=0.18")  # as pyproject.toml (tests/test_install.py checks)
EXTRAS = ("dev", "book")  # pyproject's optional dependencies: test tools, website tools (the test checks)
REACH_TIMEOUT_S = 5.0
BUILD_REQUIREMENT = "setuptools>=64"  # pyproject's build backend: an offline editable install needs it
SWITCH_TO_CPU = (f"To switch to the CPU-only wheels where {CPU_INDEX} answers: pip install --force-reinstall "
                 f"--no-deps --index-url {CPU_INDEX} torch torchvision (or make lab TORCH=cpu in a new .venv)")


@dataclass(frozen=True)
class TorchChoice:
    """Which PyTorch wheels to install: ``"cpu"`` (from ``CPU_INDEX``) or ``"default"`` (the package index's)."""

    wheels: str
    reason: str
    fell_back: bool = False  # the CPU-only wheels were wanted, but their index could not be reached


def has_nvidia_gpu(which=shutil.which, run=subprocess.run) -> bool:
    """True if ``nvidia-smi -L`` lists a GPU: the NVIDIA driver the CUDA wheels need is there."""
    exe = which("nvidia-smi")
    if exe is None:
        return False
    try:
        listed = run([exe, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return listed.returncode == 0 and "GPU" in listed.stdout


def index_reachable(url: str = CPU_INDEX, timeout: float = REACH_TIMEOUT_S, urlopen=urllib.request.urlopen) -> bool:
    """True if the package index at ``url`` answers a HEAD request for torch's page within ``timeout`` s."""
    try:
        with urlopen(urllib.request.Request(url.rstrip("/") + "/torch/", method="HEAD"), timeout=timeout) as reply:
            return 200 <= reply.status < 400
    except (OSError, ValueError):  # URLError, timeouts and refused connections are OSErrors
        return False


def choose_torch(want: str = "auto", system: str | None = None, gpu=None, reachable=None) -> TorchChoice:
    """The PyTorch wheels for this machine; ``want`` is ``auto``, ``cpu`` or ``default``.

    ``auto``: the CPU-only wheels on Linux without an NVIDIA GPU (PyPI's Linux wheels bring
    ~4 GB of CUDA libraries; its Windows and macOS wheels carry none), if ``CPU_INDEX`` can be
    reached; if it cannot, the default wheels, with a message saying so. ``cpu`` insists on
    the CPU index (an error if unreachable). ``gpu`` and ``reachable`` (default
    ``has_nvidia_gpu``, ``index_reachable``) are called only when needed.
    """
    if want not in ("auto", "cpu", "default"):
        raise ValueError(f"torch wheels must be 'auto', 'cpu' or 'default', got {want!r}")
    system = system or platform.system()
    gpu, reachable = gpu or has_nvidia_gpu, reachable or index_reachable
    if want == "default":
        return TorchChoice("default", "the default PyTorch wheels, as asked (--torch default)")
    if want == "auto" and system != "Linux":
        return TorchChoice("default", f"{system}: the default PyTorch wheels (they carry no CUDA libraries there)")
    if want == "auto" and gpu():
        return TorchChoice("default", "an NVIDIA GPU is present: the default PyTorch wheels, with CUDA")
    if reachable():
        return TorchChoice("cpu", f"no NVIDIA GPU: PyTorch's CPU-only wheels from {CPU_INDEX} "
                                  f"(about 0.2 GB to download instead of about 4 GB with CUDA)")
    if want == "cpu":
        raise SystemExit(f"--torch cpu: {CPU_INDEX} could not be reached ({REACH_TIMEOUT_S:g} s timeout); "
                         f"check the network, or use --torch auto to fall back to the default wheels")
    return TorchChoice("default", fell_back=True, reason=f"no NVIDIA GPU, but {CPU_INDEX} could not be reached "
                                  f"({REACH_TIMEOUT_S:g} s timeout): FALLING BACK to the default PyTorch wheels "
                                  f"from your package index (on Linux they add about 4 GB of CUDA libraries "
                                  f"this machine cannot use). {SWITCH_TO_CPU}")


def install_commands(choice: TorchChoice, extras=(), constraints=None, wheelhouse=None,
                     python: str = sys.executable, root: Path = ROOT) -> list[list[str]]:
    """The pip commands that install the course (editable, from ``root``) with ``extras``.

    With a CPU choice, torch and torchvision come first, alone (``--no-deps``), from
    ``CPU_INDEX``; the course's own install then finds them satisfied and takes everything
    else (their dependencies too) from the usual index. ``constraints`` (e.g. ``requirements/workshop.txt``)
    pins every version; ``wheelhouse`` installs offline from that folder only (``prepare
    --wheelhouse`` made it).
    """
    pip = [python, "-m", "pip", "install"]
    if constraints:
        pip += ["--constraint", str(constraints)]
    if wheelhouse:
        pip += ["--no-index", "--find-links", str(wheelhouse)]
    commands = []
    if choice.wheels == "cpu" and not wheelhouse:
        commands.append(pip + ["--no-deps", "--index-url", CPU_INDEX, *TORCH_REQUIREMENTS])
    target = str(root) + (f"[{','.join(extras)}]" if extras else "")
    commands.append(pip + ["--editable", target])
    return commands


def shown(command: list[str]) -> str:
    """``command`` as this machine's shell would take it (quoted for cmd.exe on Windows)."""
    return subprocess.list2cmdline(command) if os.name == "nt" else shlex.join(command)


def run_commands(commands, dry_run: bool = False, run=None, out=print) -> int:
    """Print each command, run it (unless ``dry_run``); stop at the first failure and return its status."""
    for command in commands:
        out(f"$ {shown(command)}")
        if not dry_run:
            sys.stdout.flush()  # our lines before pip's, also when the output is a pipe or a log
            status = (run or subprocess.run)(command).returncode
            if status:
                out(f"failed (exit status {status}): {shown(command)}")
                return status
    return 0


def install(extras=(), torch: str = "auto", constraints=None, wheelhouse=None, dry_run: bool = False,
            run=None, out=print, **choose) -> int:
    """``python -m kdtutor install``: pick the PyTorch wheels, print and run the pip commands; 0 on success."""
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise SystemExit(f"--extras {','.join(unknown)}: not an extra of kdtutor (choose from {', '.join(EXTRAS)})")
    if wheelhouse is not None and not Path(wheelhouse).is_dir():
        raise SystemExit(f"--wheelhouse {wheelhouse}: no such folder (make one with: python -m coursetools "
                         f"wheelhouse {wheelhouse})")
    if wheelhouse is not None:
        choice = TorchChoice("default", f"offline, from the wheelhouse {wheelhouse} (its PyTorch wheels as they are)")
    else:
        choice = choose_torch(torch, **choose)
    out(f"PyTorch: {choice.reason}")
    status = run_commands(install_commands(choice, extras, constraints, wheelhouse), dry_run, run, out)
    if choice.fell_back:  # said again after pip's hundreds of lines, where it is seen
        out(f"NOTE: {choice.reason}")
    return status




# --------------------------------------------------------------------------- the learner's working copies
WORK_DIR = ROOT / "my-lessons"  # git-ignored: the learner's copies, run and saved in JupyterLab


def _digest(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()[:16]


def working_copies(source: Path = ROOT / "notebooks", dest: Path = WORK_DIR, out=print) -> list[Path]:
    """Copy every lesson of ``source`` that ``dest`` lacks into ``dest`` (never overwriting a learner's
    copy), so that running and saving in JupyterLab leaves the course's notebooks, with their stored
    reference run, untouched. Returns the lessons copied; says which copies the course has since changed.

    Each copy records the reference it came from (``metadata.kdtutor.reference``, a SHA-256 prefix of the
    course's file); a copy whose reference has changed is named, with the command that replaces it."""
    import json

    from kdtutor.storage import atomic_write_bytes

    copied = []
    for lesson in sorted(source.glob("[0-9][0-9]_*.ipynb")):
        data = lesson.read_bytes()
        mine = dest / lesson.name
        if not mine.exists():
            nb = json.loads(data)
            nb.setdefault("metadata", {}).setdefault("kdtutor", {})["reference"] = _digest(data)
            atomic_write_bytes(mine, (json.dumps(nb, indent=1, ensure_ascii=False) + "\n").encode())
            copied.append(mine)
            continue
        try:
            recorded = json.loads(mine.read_bytes())["metadata"]["kdtutor"]["reference"]
        except (ValueError, KeyError, TypeError):
            recorded = None
        if recorded != _digest(data):
            out(f"{lesson.name[:2]}: the course's lesson changed since your copy was made (or your copy is not "
                f"one); python -m kdtutor lab --reset {lesson.name[:2]} takes the new one and keeps yours")
    return copied


def reset_lesson(lesson: str, source: Path = ROOT / "notebooks", dest: Path = WORK_DIR) -> Path | None:
    """Put the course's lesson ``lesson`` (e.g. ``"03"``) back into ``dest``; the learner's copy, if any, is
    kept beside it as ``NN_name.mine-K.ipynb`` (K = 1, 2, … : never overwritten). Returns where it was kept."""
    matches = sorted(source.glob(f"{lesson}_*.ipynb"))
    if len(lesson) != 2 or not lesson.isdigit() or len(matches) != 1:
        raise SystemExit(f"--reset {lesson}: name a lesson by its number, one of "
                         f"{', '.join(p.name[:2] for p in sorted(source.glob('[0-9][0-9]_*.ipynb')))}")
    mine, kept = dest / matches[0].name, None
    if mine.exists():
        k = 1
        while (dest / f"{mine.stem}.mine-{k}.ipynb").exists():
            k += 1
        kept = mine.rename(dest / f"{mine.stem}.mine-{k}.ipynb")
    working_copies(source, dest, out=lambda line: None)
    return kept
