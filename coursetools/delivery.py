"""Run anywhere in one click: the badges and the setup cell at the top of every lesson.

Every lesson in ``notebooks/`` opens with two generated cells, kept by their cell ids:

* ``kdtutor-badges`` (markdown): "Open in Colab" and "Launch Binder" badges for this lesson;
* ``kdtutor-setup`` (code): where ``kdtutor`` is not importable it installs the checkout the lesson
  sits in, or (Colab, Kaggle) clones the course, installs it with its requirements and fetches the data the lesson needs
  (``python -m kdtutor prepare --data-only --need …``); in the course's own environment
  (``make lab``, Binder, the tests) it does nothing.

The repository and branch the badges and the setup cell point at live in one file,
``coursetools/delivery.json``; a fork edits it and runs ``python -m coursetools generate``. The same
file says how the lessons announce their written questions: ``"written_questions": "optional"``
(the default) or ``"required"`` (:func:`coursetools.instructor.set_written_wording`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

CONFIG_PATH = Path(__file__).with_name("delivery.json")
BADGES_ID = "kdtutor-badges"
SETUP_ID = "kdtutor-setup"
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
BINDER_BADGE = "https://mybinder.org/badge_logo.svg"
WRITTEN_WORDINGS = ("optional", "required")  # how a lesson announces its written questions

# What a lesson needs fetched, found from the kdtutor functions its code calls.
NEEDS = {
    "images": re.compile(r"\b(load_dataset|get_teacher)\b"),
    "text": re.compile(r"\b(load_text|lm_lesson)\b"),
}


def config(path: Path = CONFIG_PATH) -> dict:
    """``{"repository": "org/name", "branch": "...", "written_questions": "optional" | "required"}``
    from ``delivery.json``, validated (``written_questions`` may be left out: ``"optional"``)."""
    cfg = json.loads(Path(path).read_text())
    repo, branch = cfg.get("repository", ""), cfg.get("branch", "")
    wording = cfg.get("written_questions", "optional")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ValueError(f"{path}: 'repository' must look like 'org/name', got {repo!r}")
    if not re.fullmatch(r"[\w./-]+", branch):
        raise ValueError(f"{path}: 'branch' must be a git branch name, got {branch!r}")
    if wording not in WRITTEN_WORDINGS:
        raise ValueError(f"{path}: 'written_questions' must be one of {', '.join(map(repr, WRITTEN_WORDINGS))}, "
                         f"got {wording!r}")
    return {"repository": repo, "branch": branch, "written_questions": wording}


def repo_url(cfg: dict) -> str:
    return f"https://github.com/{cfg['repository']}"


def pages_url(cfg: dict) -> str:
    """The course website's address where GitHub Pages publishes it (.github/workflows/pages.yml):
    ``https://<owner>.github.io/<name>/``."""
    owner, name = cfg["repository"].split("/")
    return f"https://{owner.lower()}.github.io/{name}/"


def colab_url(notebook: str, cfg: dict) -> str:
    """The Colab address of ``notebooks/<notebook>`` on the configured branch."""
    return f"https://colab.research.google.com/github/{cfg['repository']}/blob/{cfg['branch']}/notebooks/{notebook}"


def binder_url(notebook: str, cfg: dict) -> str:
    """The Binder address that opens ``notebooks/<notebook>`` in JupyterLab."""
    return (f"https://mybinder.org/v2/gh/{cfg['repository']}/{cfg['branch']}"
            f"?labpath={quote('notebooks/' + notebook, safe='')}")


def badges_source(notebook: str, cfg: dict) -> str:
    return (f"[![Open In Colab]({COLAB_BADGE})]({colab_url(notebook, cfg)}) "
            f"[![Launch Binder]({BINDER_BADGE})]({binder_url(notebook, cfg)})")


def lesson_needs(nb) -> list[str]:
    """The data a lesson needs fetched (``"images"``, ``"text"``), from the code it runs."""
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code" and c.id != SETUP_ID)
    return [need for need, pattern in NEEDS.items() if pattern.search(code)]


def setup_source(needs: list[str], cfg: dict) -> str:
    """The setup cell: a no-op where ``kdtutor`` imports; in a checkout of the course (a ``pyproject.toml``
    naming kdtutor one or two folders up) it installs that checkout; elsewhere (Colab, Kaggle) it clones
    the course into ``kdtutor-course``, installs it and fetches the lesson's data. A step that fails
    (offline, no git) prints one line saying which and why, and the rest is skipped."""
    fetch = ""
    if needs:
        fetch = ("    ok = ok and _setup_step(\"fetch the lesson's data\", sys.executable, \"-m\", \"kdtutor\", \"prepare\",\n"
                 "                            \"--data-only\", " + ", ".join(f'"--need", "{n}"' for n in needs) + ", cwd=home)\n")
    return (
        "# Setup for Colab and Kaggle: installs the course where kdtutor is missing; does nothing elsewhere.\n"
        "import importlib.util, os, re, subprocess, sys\n"
        "\n"
        "\n"
        "def _setup_step(what, *cmd, cwd=None):\n"
        "    \"\"\"Run one command; if it fails, print one line saying what failed and why, and return False.\"\"\"\n"
        "    try:\n"
        "        done = subprocess.run(list(cmd), cwd=cwd, stderr=subprocess.PIPE, text=True)\n"
        "    except OSError as e:\n"
        "        print(f\"setup: could not {what}: {e}\")\n"
        "        return False\n"
        "    if done.returncode != 0:\n"
        "        why = ((done.stderr or \"\").strip().splitlines() or [f\"exit status {done.returncode}\"])[-1]\n"
        "        print(f\"setup: could not {what} (offline?): {why}\")\n"
        "    return done.returncode == 0\n"
        "\n"
        "\n"
        "def _course_checkout():\n"
        "    \"\"\"The course checkout this lesson sits in (a pyproject.toml naming kdtutor one or two folders up), or None.\"\"\"\n"
        "    for up in (os.pardir, os.path.join(os.pardir, os.pardir)):\n"
        "        path = os.path.join(up, \"pyproject.toml\")\n"
        "        if os.path.isfile(path):\n"
        "            with open(path, encoding=\"utf-8\") as f:\n"
        "                if re.search(r'^name\\s*=\\s*\"kdtutor\"', f.read(), re.M):\n"
        "                    return os.path.abspath(up)\n"
        "    return None\n"
        "\n"
        "\n"
        "if importlib.util.find_spec(\"kdtutor\") is None:\n"
        "    home = _course_checkout() or os.path.abspath(\"kdtutor-course\")\n"
        "    ok = os.path.isdir(home) or _setup_step(\"download the course\", \"git\", \"clone\", \"--depth\", \"1\",\n"
        f"                                            \"--branch\", \"{cfg['branch']}\", \"{repo_url(cfg)}\", home)\n"
        "    ok = ok and _setup_step(\"install kdtutor\", sys.executable, \"-m\", \"pip\", \"install\", \"--quiet\", \"-e\", home)\n"
        "    if ok:\n"
        "        sys.path.insert(0, home)  # this kernel started before the install\n"
        + fetch
        + "    if ok:\n"
        "        print(\"kdtutor installed; the profile follows the GPU found (gpu with CUDA, else cpu).\")\n"
    )


def decorate(nb, notebook: str, cfg: dict | None = None) -> bool:
    """Put (or refresh) the badge and setup cells at the top of ``nb``; True if anything changed.

    The badges go right after the title cell, the setup cell right after the badges.
    """
    import nbformat

    cfg = cfg or config()
    badges = nbformat.v4.new_markdown_cell(badges_source(notebook, cfg), id=BADGES_ID)
    badges.metadata["tags"] = ["remove-cell"]  # the website has its own launch buttons
    setup = nbformat.v4.new_code_cell(setup_source(lesson_needs(nb), cfg), id=SETUP_ID)
    setup.metadata["tags"] = ["remove-cell"]
    previous = next((c for c in nb.cells if c.get("id") == SETUP_ID), None)
    if previous is not None and "kdtutor" in previous.metadata:  # its stored-output record (coursetools.stored)
        setup.metadata["kdtutor"] = previous.metadata["kdtutor"]
    rest = [c for c in nb.cells if c.get("id") not in (BADGES_ID, SETUP_ID)]
    new = rest[:1] + [badges, setup] + rest[1:]
    before = [(c.get("id"), c.source, dict(c.metadata)) for c in nb.cells]
    nb.cells = new
    return before != [(c.get("id"), c.source, dict(c.metadata)) for c in nb.cells]


PREDICT = re.compile(r"\*\*Predict before you run:?\*\*")
HIDE_TAG = "hide-output"  # the website (MyST-NB, sphinx-book-theme): the output behind a "show" toggle


def hide_predicted_outputs(nb) -> bool:
    """Hide the stored output of each code cell that answers a "**Predict before you run:**" prompt (the
    first code cell after the prompt's markdown cell) until the reader opens it: collapsed in JupyterLab
    (``metadata.jupyter.outputs_hidden``) and behind a toggle on the website (tag ``hide-output``).
    Every other cell is left shown. True if anything changed."""
    changed, waiting = False, False
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            waiting = waiting or bool(PREDICT.search(cell.source))
            continue
        if cell.cell_type != "code":
            continue
        hide, waiting = waiting, False
        tags = list(cell.metadata.get("tags", []))
        jupyter = dict(cell.metadata.get("jupyter", {}))
        if hide:
            tags = tags if HIDE_TAG in tags else tags + [HIDE_TAG]
            jupyter["outputs_hidden"] = True
        else:
            tags = [t for t in tags if t != HIDE_TAG]
            jupyter.pop("outputs_hidden", None)
        before = (list(cell.metadata.get("tags", [])), dict(cell.metadata.get("jupyter", {})))
        for key, value in (("tags", tags), ("jupyter", jupyter)):
            if value:
                cell.metadata[key] = value
            else:
                cell.metadata.pop(key, None)
        changed |= before != (list(cell.metadata.get("tags", [])), dict(cell.metadata.get("jupyter", {})))
    return changed
