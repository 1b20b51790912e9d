"""The reference run, stored in the lessons: every lesson readable before it runs, never stale.

A lesson in ``notebooks/`` carries the outputs of two runs:

* cells marked ``# NBVAL_CHECK_OUTPUT`` hold the **smoke** profile's outputs: ``make test`` runs
  the lessons in that profile and nbval compares these cells (:func:`coursetools.course.refresh_notebooks`);
* every other code cell holds the outputs of the **reference run** (the ``cpu`` profile on the
  JPEG copy of CIFAR-10 and tiny Shakespeare), so the lesson reads on GitHub, nbviewer, Colab
  and the website with its figures and numbers (:func:`store_reference`, ``make notebooks PROFILE=cpu``).

Every code cell records what made its outputs in ``metadata["kdtutor"]["output"]``::

    {"source": <sha256 of the cell's source, 16 hex>, "profile": "cpu",
     "inputs": <sha256 of that profile's settings, 16 hex>, "version": <kdtutor version>,
     "code": <fingerprint of the kdtutor source the lesson runs, 16 hex (lesson_code)>}

and :func:`stale_cells` names every cell whose source, profile, kdtutor version or kdtutor code changed
since (the test ``tests/test_stored_outputs.py`` runs it on every lesson). The code is that of the
kdtutor modules the lesson imports and of those they import (:func:`kdtutor.fingerprint.code_fingerprint`):
an edit to the teacher's model or to ECE makes the lessons that use them stale; an edit to course
tooling that no lesson imports does not. The notebook's
``metadata["kdtutor"]["reference_run"]`` says which run it was (profile, data, machine, date).

Stored compactly: figures as 256-colour PNGs, progress bars dropped, widgets replaced by a
line saying what they are (their state is not stored), and every figure or table followed by
a small label naming its data, profile and machine.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import platform
import re
import time
from pathlib import Path

from coursetools.course import is_checked, notebooks, write_notebook
from kdtutor.storage import REPO_ROOT, RESULTS_DIR, atomic_write_bytes

SMOKE = "smoke"
REFERENCE = "cpu"  # the profile whose run the lessons store
FIGURE_DIR = REPO_ROOT / "book" / "figures"  # the README's figures, exported from the stored lessons
SUMMARY_PAGE = REPO_ROOT / "book" / "reference_run.md"  # the reference run's summary, a page of the website
WIDGET = "application/vnd.jupyter.widget-view+json"
# tqdm's text form (tqdm.std.tqdm.format_meter): "epoch 1/3:  40%|████      | 70/175 [00:01<00:02, 2.1it/s]" with
# a total; "reading: 0 files [00:00, ? files/s]" without one (no percentage: only the elapsed-time bracket)
PROGRESS_BAR = re.compile(r"\d+%\||\[\d+:\d\d(?::\d\d)?(?:<[^,\]]*)?, [^\]]*(?:/s|/it)\]")
PRIVATE_PATH = re.compile(r"(?<![\w.])/(?:work|root|tmp|home)/")  # a folder of the run's machine, not the reader's
LABEL_CLASS = "kdtutor-reference-label"  # metadata of the label line under a figure or table
WIDGET_CLASS = "widget"  # metadata of the line standing in for a widget


# ── what made an output ────────────────────────────────────────────────────────────────────────

def source_hash(source: str) -> str:
    """The first 16 hex digits of the SHA-256 of a cell's source (exact text, UTF-8)."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]


def settings_hash(profile_name: str) -> str:
    """The first 16 hex digits of the SHA-256 of the profile's settings (every field, as JSON): the
    lesson inputs that decide what the stored outputs show (sizes, epochs, seeds, budgets)."""
    from kdtutor.profiles import get_profile

    settings = dataclasses.asdict(get_profile(profile_name))
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def lesson_modules(nb) -> list[str]:
    """The kdtutor modules a lesson's code cells import (``import kdtutor…``, ``from kdtutor… import``;
    ``python -m kdtutor`` in a shell line counts as ``kdtutor.__main__``)."""
    import ast

    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        if any(re.search(r"python3?\s+-m\s+kdtutor\b", line) for line in lines if line.lstrip().startswith(("!", "%"))):
            found.add("kdtutor.__main__")
        try:
            tree = ast.parse("\n".join("" if line.lstrip().startswith(("!", "%")) else line for line in lines))
        except SyntaxError:
            continue  # not Python: the lesson's own check reports it
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                     if isinstance(node, ast.ImportFrom) and not node.level else [])
            found |= {n for n in names if n == "kdtutor" or n.startswith("kdtutor.")}
    from kdtutor.fingerprint import module_file

    return sorted(n for n in found if module_file(n))


def lesson_code(nb) -> str:
    """Fingerprint of the kdtutor source a lesson runs: the modules it imports and theirs, transitively."""
    from kdtutor.fingerprint import code_fingerprint

    return code_fingerprint("kdtutor", *lesson_modules(nb))


def stamp(cell, profile_name: str, code: str) -> None:
    """Record in ``cell.metadata["kdtutor"]["output"]`` what made the cell's (possibly empty) outputs:
    its source, the profile and its settings, kdtutor's version and ``code`` (:func:`lesson_code` of the
    lesson as it ran)."""
    from kdtutor import __version__

    meta = cell.metadata.setdefault("kdtutor", {})
    meta["output"] = {"source": source_hash(cell.source), "profile": profile_name,
                      "inputs": settings_hash(profile_name), "version": __version__, "code": code}


def restamp_generated(nb, cell_id: str) -> None:
    """After ``make generate`` rewrote the generated cell ``cell_id`` (the setup cell, which prints
    nothing where kdtutor is installed, as in the reference run): record it as current while it
    stores no outputs."""
    for cell in nb.cells:
        if cell.get("id") == cell_id and cell.cell_type == "code" and not cell.get("outputs"):
            old = cell.metadata.get("kdtutor", {}).get("output", {})
            if old.get("source") != source_hash(cell.source) or old.get("profile") != REFERENCE:
                stamp(cell, REFERENCE, lesson_code(nb))  # rewritten: stamped anew (an unchanged one keeps its
                # stamp, so that an edit to kdtutor does not rewrite every lesson's setup cell)


def cell_name(nb_name: str, index: int, cell) -> str:
    """How a message names a cell: lesson, index and first line."""
    first = next((line for line in cell.source.splitlines() if line.strip()), "")
    return f"{nb_name} cell {index} ({first[:60]!r})"


def stale_cells(nb, nb_name: str = "notebook", code: bool = True) -> list[str]:
    """Every code cell whose stored outputs were not made from its current source and profile
    settings, by this kdtutor version and (``code=True``) this kdtutor source (:func:`lesson_code`; a
    stamp that records none is stale too), or carry no record, or a checked cell whose outputs are
    not the smoke run's, named with what is wrong; ``[]`` when every stored output is current."""
    from kdtutor import __version__

    problems, current = [], lesson_code(nb) if code else None
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        made = cell.metadata.get("kdtutor", {}).get("output")
        name = cell_name(nb_name, i, cell)
        if made is None:
            problems.append(f"{name}: no record of what made its outputs")
        elif made.get("source") != source_hash(cell.source):
            problems.append(f"{name}: its source changed since its outputs were stored")
        elif is_checked(cell) and made.get("profile") != SMOKE:
            problems.append(f"{name}: a checked cell must store the smoke run's outputs (nbval compares them)")
        elif made.get("inputs") != settings_hash(made.get("profile", "")):
            problems.append(f"{name}: the {made.get('profile')} profile's settings changed since its outputs were stored")
        elif made.get("version") != __version__:
            problems.append(f"{name}: its outputs were made by kdtutor {made.get('version')}, this is {__version__}")
        elif code and made.get("code") != current:
            problems.append(f"{name}: " + ("its record does not say which kdtutor source made its outputs"
                                           if made.get("code") is None else
                                           "the kdtutor source this lesson runs changed since its outputs were stored"))
    return problems


def refresh_hint(nb_name: str) -> str:
    lesson = nb_name[:2]
    return (f"refresh it: make notebooks PROFILE={REFERENCE} LESSONS={lesson} (or python -m coursetools refresh-notebooks "
            f"--profile {REFERENCE} notebooks/{nb_name}); a cell marked # NBVAL_CHECK_OUTPUT: make notebooks LESSONS={lesson}")


# ── the machine and the run ────────────────────────────────────────────────────────────────────

def machine() -> str:
    """This machine in words, e.g. ``"2-core CPU (x86_64), no GPU"`` or ``"NVIDIA H200 GPU"``."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} GPU"
    return f"{os.cpu_count()}-core CPU ({platform.machine() or 'unknown'}), no GPU"


def run_record(nb, profile_name: str, data: str | None, results_dir: Path | None = None) -> dict:
    """What a course run records in the executed lesson ``nb`` (``metadata["kdtutor"]["run"]``): profile,
    settings, version, kdtutor source (:func:`lesson_code`), data, machine, date, and the machine's
    folders and how stored outputs spell them (``paths``: data/…, results/…)."""
    from kdtutor import __version__

    paths = machine_paths(results_dir)
    return {"profile": profile_name, "inputs": settings_hash(profile_name), "version": __version__, "code": lesson_code(nb),
            "data": data, "machine": machine(), "finished": time.strftime("%Y-%m-%d"), "paths": paths}


def machine_paths(results_dir: Path | None = None) -> dict[str, str]:
    """This machine's folders and data settings → how stored outputs spell them: data/…, results/…, the
    repository as ``.``, ``$KDTUTOR_CIFAR10``/``$KDTUTOR_TEXT`` for the files they point at."""
    from kdtutor.storage import DATA_DIR

    return {str(Path(DATA_DIR).resolve()): "data", str(Path(results_dir or RESULTS_DIR).resolve()): "results",
            str(REPO_ROOT): ".", **data_variables()}


def data_variables(environ=None) -> dict[str, str]:
    """``{path: "$VARIABLE"}`` for the data settings that point at the run machine's own files
    (``$KDTUTOR_CIFAR10``, ``$KDTUTOR_TEXT``): stored outputs name the variable, not the path."""
    from kdtutor.images.data import CIFAR10_ENV
    from kdtutor.lm.text import TEXT_ENV

    environ = os.environ if environ is None else environ
    found = {}
    for name in (CIFAR10_ENV, TEXT_ENV):
        value = environ.get(name, "").strip()
        if value:
            found[value] = f"${name}"
            found[str(Path(value).expanduser().resolve())] = f"${name}"
    return found


def lesson_data(metrics_dir: Path, nb_name: str) -> str | None:
    """The data set a lesson used, as the lesson itself saved it (``metrics/<NN>_*.json``'s ``dataset``);
    ``None`` for a lesson that saves no metrics (lessons 00–02 use logits written in the lesson)."""
    for path in sorted(Path(metrics_dir).glob(f"{nb_name[:2]}_*.json")):
        name = json.loads(path.read_text(encoding="utf-8")).get("dataset")
        if name:
            return name
    return None


def not_current(executed, nb, profile_name: str) -> str | None:
    """Why an executed lesson cannot supply ``nb``'s outputs (another profile or settings, another
    version or kdtutor source that the lesson runs (:func:`lesson_code`), a cell whose source differs),
    or ``None`` when it can."""
    from kdtutor import __version__

    run = executed.metadata.get("kdtutor", {}).get("run")
    if run is None:
        return "it records no run (made by an older kdtutor)"
    if run["profile"] != profile_name or run["inputs"] != settings_hash(profile_name):
        return f"it was run with other settings (profile {run['profile']})"
    if run["version"] != __version__:
        return f"it was run by kdtutor {run['version']}, this is {__version__}"
    if run.get("code") != lesson_code(nb):
        return "it was run by other kdtutor code (a source file the lesson uses changed since)"
    mine = [c.source for c in nb.cells if c.cell_type == "code"]
    theirs = [c.source for c in executed.cells if c.cell_type == "code"]
    if mine != theirs:
        changed = next((i for i, (a, b) in enumerate(zip(mine, theirs)) if a != b), min(len(mine), len(theirs)))
        return f"its code cells differ from the lesson's (code cell {changed} first)"
    return None


# ── compact outputs ────────────────────────────────────────────────────────────────────────────

def compact_png(b64: str) -> str:
    """A PNG (base64) re-encoded with a 256-colour palette (no dithering), about a third of the
    bytes for plots and image grids, same pixel size."""
    from PIL import Image

    image = Image.open(io.BytesIO(base64.b64decode(b64))).convert("RGB")
    buf = io.BytesIO()
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buf, "PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def relative_paths(out: dict, paths: dict) -> dict:
    """``out`` with the run machine's folders (``paths``: absolute → short) written short in its text."""
    def fix(text):
        if isinstance(text, list):
            text = "".join(text)
        for absolute, short in sorted(paths.items(), key=lambda kv: -len(kv[0])):  # longest first
            text = re.sub(re.escape(absolute) + r"(?![\w.-])", lambda _: short, text.replace(absolute + os.sep, short + "/"))
        return text

    out = dict(out)
    if "text" in out:
        out["text"] = fix(out["text"])
    if "data" in out:
        out["data"] = {k: fix(v) if k.startswith("text/") else v for k, v in out["data"].items()}
    return out


def compact_outputs(outputs: list, paths: dict | None = None) -> list:
    """The outputs to store: progress bars dropped (their text form shows 0 %), other widgets
    replaced by a line saying what they are (their state is not stored), PNGs compacted, the run
    machine's folders (``paths``) written as data/…, results/…"""
    import nbformat

    kept = []
    for out in (relative_paths(o, paths or {}) for o in outputs):
        data = out.get("data", {})
        if WIDGET in data:
            if PROGRESS_BAR.search(str(data.get("text/plain", ""))):
                continue
            kept.append(nbformat.v4.new_output("display_data", data={
                "text/plain": "[an interactive widget: run the cell to use it]",
                "text/markdown": "*[An interactive widget: run the cell to use it.]*"}, metadata={"kdtutor": WIDGET_CLASS}))
            continue
        if "image/png" in data:
            out = dict(out, data={**data, "image/png": compact_png(data["image/png"])})
        kept.append(nbformat.from_dict(out))
    return kept


def label_text(run: dict) -> str:
    """The label line's words (no "run the cell": the website and GitHub cannot run it)."""
    data = run.get("data") or "no data set (logits written in the lesson)"
    return (f"Reference run: profile {run['profile']}, {data}, {run['machine']}, kdtutor {run['version']}, "
            f"{run['finished']}.")


def label_output(run: dict):
    """A small line under a stored figure or table naming its data, profile and machine."""
    import nbformat

    text = label_text(run)
    return nbformat.v4.new_output("display_data", data={"text/plain": f"[{text}]", "text/markdown": f"<sub>{text}</sub>"},
                                  metadata={"kdtutor": LABEL_CLASS})


# what builds a widget in a lesson: kdtutor.widgets' explorers, ipywidgets' interact, a widget class
WIDGET_MAKER = re.compile(r"\b(?:temperature_explorer|interact(?:ive)?|widgets\.[A-Z]\w*)\s*\(")


def makes_widget(source: str) -> bool:
    """Whether a cell's source builds an interactive widget (the only cells whose stored outputs may
    hold the line standing in for one)."""
    return bool(WIDGET_MAKER.search(source))


def figure_alt(cells: list, index: int, run: dict) -> str:
    """Alt text for the figures of ``cells[index]`` on the website: the section it is in, what draws it
    (the ``kdtutor.figures`` function the cell calls, in words) and the run it comes from, e.g.
    ``"3. Training — learning curves (lesson03.learning_curves), reference run: profile cpu, CIFAR-10 (JPEG copy)"``."""
    import ast

    heading = next((line.lstrip("#").strip() for cell in reversed(cells[:index]) if cell.cell_type == "markdown"
                    for line in reversed(cell.source.splitlines()) if line.startswith("#")), "Figure")
    try:
        calls = [node.func for node in ast.walk(ast.parse(cells[index].source)) if isinstance(node, ast.Call)]
    except SyntaxError:
        calls = []
    drawn = next((f"{f.attr.replace('_', ' ')} ({f.value.id}.{f.attr})" for f in calls if isinstance(f, ast.Attribute)
                  and isinstance(f.value, ast.Name) and re.fullmatch(r"lesson\d\d|figures|common", f.value.id)), "figure")
    data = run.get("data") or "logits written in the lesson"
    return f"{heading} — {drawn}, reference run: profile {run['profile']}, {data}"


def set_figure_alt(cells: list, index: int, run: dict) -> None:
    """Record :func:`figure_alt` where MyST-NB reads it (``metadata["mystnb"]["image"]["alt"]``) for a cell
    that stores a figure."""
    cell = cells[index]
    if any(k.startswith("image/") for out in cell.get("outputs", []) for k in out.get("data", {})):
        cell.metadata.setdefault("mystnb", {}).setdefault("image", {})["alt"] = figure_alt(cells, index, run)


def shows_figure_or_table(outputs: list) -> bool:
    """Whether a cell's outputs hold a figure or a rendered table (markdown or HTML)."""
    return any(k in out.get("data", {}) for out in outputs for k in ("image/png", "image/svg+xml", "text/markdown", "text/html")
               if out.get("metadata", {}).get("kdtutor") not in (LABEL_CLASS, WIDGET_CLASS))


# ── storing the reference run ──────────────────────────────────────────────────────────────────

def merge(nb, executed, run: dict) -> None:
    """Put the executed lesson's outputs into ``nb``'s unchecked code cells (compacted, labelled
    under figures and tables) and stamp them; checked cells keep their stored smoke outputs."""
    pairs = zip([i for i, c in enumerate(nb.cells) if c.cell_type == "code"],
                [c for c in executed.cells if c.cell_type == "code"])
    for index, ran in pairs:
        cell = nb.cells[index]
        if cell.source != ran.source:
            raise ValueError(f"the executed lesson's cell differs from the lesson's: {cell.source[:60]!r}")
        if is_checked(cell):
            if any(k.startswith("image/") for o in ran.outputs for k in o.get("data", {})):
                raise ValueError(f"the checked cell {cell.source[:60]!r} draws a figure: nbval's smoke run (Agg) stores "
                                 "none, so readers would not see it; move the figure into a cell of its own")
            continue
        errors = [o for o in ran.outputs if o.get("output_type") == "error"]
        if errors:
            raise ValueError(f"the reference run failed in cell {cell.source[:60]!r}: {errors[0].get('ename')}")
        cell.outputs = compact_outputs(ran.outputs, run.get("paths"))
        if shows_figure_or_table(cell.outputs):
            cell.outputs.append(label_output(run))
        cell.execution_count = ran.execution_count if cell.outputs else None
        cell.metadata.pop("execution", None)
        set_figure_alt(nb.cells, index, run)
        stamp(cell, run["profile"], run.get("code"))
    nb.metadata.setdefault("kdtutor", {})["reference_run"] = {k: run[k] for k in ("profile", "data", "machine", "version", "finished")}


def tidy_stored(nb, paths: dict) -> bool:
    """Rewrite a stored lesson's outputs in place where only their text or metadata is out of date, without
    running anything: the run machine's folders (``paths``, as :func:`run_record`'s) written short, the
    line standing in for a widget dropped from cells that build none (a progress bar's, stored before
    :data:`PROGRESS_BAR` knew bars without a total), label lines in today's words (:func:`label_text`),
    alt text for every figure (:func:`set_figure_alt`). Stamps stay valid: they record the cells' sources.
    True if anything changed."""
    import nbformat

    run = nb.metadata.get("kdtutor", {}).get("reference_run")
    before = nbformat.writes(nb)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or is_checked(cell):
            continue
        outputs = [nbformat.from_dict(relative_paths(o, paths)) for o in cell.outputs]
        outputs = [o for o in outputs if o.get("metadata", {}).get("kdtutor") != WIDGET_CLASS or makes_widget(cell.source)]
        if run:
            outputs = [label_output(run) if o.get("metadata", {}).get("kdtutor") == LABEL_CLASS else o for o in outputs]
        cell.outputs = outputs
        if run:
            set_figure_alt(nb.cells, index, run)
    return nbformat.writes(nb) != before


def private_paths(nb, nb_name: str = "notebook") -> list[str]:
    """Every stored output that names a folder of the run's machine (:data:`PRIVATE_PATH`), named by cell."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            texts = [out.get("text", "")] + [v for k, v in out.get("data", {}).items() if k.startswith("text/")]
            texts += out.get("traceback", []) + [out.get("evalue", "")]
            for text in texts:
                match = PRIVATE_PATH.search("".join(text) if isinstance(text, list) else str(text))
                if match:
                    found.append(f"{cell_name(nb_name, i, cell)}: a private path in its output: "
                                 f"{match.string[match.start():match.start() + 60]!r}")
    return found


def finished_lessons(paths: list[Path], lessons: list, profile_name: str, results_dir: Path) -> list:
    """Each lesson (``lessons``: the notebooks at ``paths``, read) as executed by the finished course
    run in ``results_dir`` where that run is current for it; the others are run again now, together
    (the course run reuses every current checkpoint)."""
    import nbformat

    from coursetools.book import INLINE_BACKEND
    from coursetools.course import mpl_backend, run_course

    folder = results_dir / profile_name / "notebooks"
    done = {}
    for path, nb in zip(paths, lessons):
        if (folder / path.name).exists():
            executed = nbformat.read(folder / path.name, as_version=4)
            why = not_current(executed, nb, profile_name)
        else:
            executed, why = None, f"no finished {profile_name} run in {folder}"
        print(f"{path.name}: " + (f"outputs from the finished run in {folder}" if why is None else f"{why}: running it again"))
        if why is None:
            done[path] = executed
    again = [path for path in paths if path not in done]
    if again:  # figures drawn inline into the notebooks, whatever backend this process was given
        with mpl_backend(INLINE_BACKEND):
            run_course(profile_name, results_dir=results_dir, lessons=[path.name[:2] for path in again])
    return [done.get(path) or nbformat.read(folder / path.name, as_version=4) for path in paths]


def store_reference(paths=None, profile_name: str = REFERENCE, results_dir: Path | None = None,
                    figures: Path = FIGURE_DIR, lessons=None) -> list[Path]:
    """Store the ``profile_name`` run's outputs in the lessons at ``paths`` (default: all), from a
    finished ``make course`` run in ``results_dir`` (default ``results/``) where it is current, else
    by running the lesson; then export the README's figures (from ``lessons``, default all, into
    ``figures``) and, after a refresh of every lesson, the website's summary page."""
    import nbformat

    results_dir = Path(results_dir or RESULTS_DIR).resolve()
    paths = [Path(p) for p in (paths or notebooks())]
    nbs = [nbformat.read(path, as_version=4) for path in paths]
    for path, nb, executed in zip(paths, nbs, finished_lessons(paths, nbs, profile_name, results_dir)):
        merge(nb, executed, executed.metadata["kdtutor"]["run"])
        write_notebook(nb, path)
    export_figures(figures, lessons)
    summary = results_dir / profile_name / "summary.md"
    if summary.exists() and len(paths) == len(notebooks()):
        write_summary_page(summary, executed.metadata["kdtutor"]["run"])
    return paths


# ── the README's figures and the website's summary page ────────────────────────────────────────

def tagged_figures(nb) -> dict[str, str]:
    """``{name: base64 PNG}`` of the cells tagged ``metadata["kdtutor"]["figure"] = name`` (the README's)."""
    found = {}
    for cell in nb.cells:
        name = cell.get("metadata", {}).get("kdtutor", {}).get("figure")
        if name:
            pngs = [o["data"]["image/png"] for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
            if len(pngs) != 1:
                raise ValueError(f"the cell tagged as figure {name!r} stores {len(pngs)} figures, not one")
            found[name] = pngs[0]
    return found


def export_figures(folder: Path = FIGURE_DIR, lessons=None) -> list[Path]:
    """Write each tagged figure of the stored ``lessons`` (default: all) to ``folder/<NN>-<name>.png``
    (what the README shows)."""
    import nbformat

    written = []
    for path in lessons or notebooks():
        for name, png in tagged_figures(nbformat.read(path, as_version=4)).items():
            target = folder / f"{path.name[:2]}-{name}.png"
            data = base64.b64decode(png)
            if not target.exists() or target.read_bytes() != data:
                atomic_write_bytes(target, data)
            written.append(target)
    return written


def write_summary_page(summary: Path, run: dict, page: Path = SUMMARY_PAGE) -> Path:
    """The course run's ``summary.md`` as the website's reference-run page (its figures are in the lessons),
    with a line naming the run's machine, kdtutor version and date."""
    text = summary.read_text(encoding="utf-8")
    title, _, rest = text.partition("\n")
    text = (f"{title}\n\nThe course's reference run, stored in the lessons: profile `{run['profile']}` on a {run['machine']}, "
            f"kdtutor {run['version']}, {run['finished']}. Lesson 07 uses tiny Shakespeare.\n{rest}")
    text = re.sub(r"## Figures\n.*?(?=\n## )", "", text, flags=re.S)
    text = text.replace("Executed notebooks are in `notebooks/`.", "The lessons' pages show every output of this run.")
    atomic_write_bytes(page, text.encode("utf-8"))
    return page


def summary_of_lessons(paths=None) -> list[dict]:
    """Per lesson: code cells, how many store outputs, how many figures, bytes (for the closing note and tests)."""
    import nbformat

    rows = []
    for path in [Path(p) for p in (paths or notebooks())]:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        rows.append({"lesson": path.name, "code_cells": len(code), "with_outputs": sum(bool(c.outputs) for c in code),
                     "figures": sum("image/png" in o.get("data", {}) for c in code for o in c.outputs),
                     "bytes": path.stat().st_size})
    return rows
