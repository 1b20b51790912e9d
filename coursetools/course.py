"""Running the lessons headless (``make course``) and keeping their stored outputs tidy.

``make course`` executes every notebook in ``notebooks/`` in order with the
chosen profile, writes the executed copies to ``results/<profile>/notebooks/``
and a summary to ``results/<profile>/summary.md``.

Stored outputs: cells whose first line is ``# NBVAL_CHECK_OUTPUT`` store the smoke
profile's outputs, which nbval compares in ``make test``; :func:`refresh_notebooks` re-runs
the notebooks in the smoke profile and stores those. Every other cell stores the reference
run's outputs (:mod:`coursetools.stored`, ``make notebooks PROFILE=cpu``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path

from coursetools import speedprobe
from kdtutor.storage import REPO_ROOT, RESULTS_DIR, atomic_write_bytes

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
# The kernels' own log: errors only (not ipykernel 7's warning, once per lesson, that a local kernel talks over
# TCP without encryption, which says nothing about the lesson). The lessons' output is unaffected.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]


def notebooks() -> list[Path]:
    """The lessons, in course order (by file name: 00_…, 01_…)."""
    return sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_text(nb) -> str:
    """``nb`` as nbformat writes it to a file (JSON ending in a newline)."""
    import nbformat

    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def write_notebook(nb, path: Path) -> None:
    """Write ``nb`` to ``path`` atomically (:func:`kdtutor.storage.atomic_write_bytes`)."""
    atomic_write_bytes(path, notebook_text(nb).encode("utf-8"))


def lesson_paths(names=None) -> list[Path] | None:
    """The lessons named by paths or numbers (``"03"``, ``"notebooks/03_teacher_training.ipynb"``);
    ``None`` (every lesson) for none. Raises ``ValueError`` for a name that matches no lesson."""
    if not names:
        return None
    found = []
    for name in names:
        if Path(name).is_file():
            found.append(Path(name))
            continue
        hits = [p for p in notebooks() if p.name.startswith(str(name))]
        if not hits:
            raise ValueError(f"no lesson matches {name!r}; the lessons are {[p.name for p in notebooks()]}")
        found += hits
    return found


def is_checked(cell) -> bool:
    """True for a code cell marked ``# NBVAL_CHECK_OUTPUT`` (nbval compares its outputs)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(CHECK_MARK)


def execute(path: Path, profile_name: str, timeout: int = 3600, env: dict | None = None):
    """Run the notebook at ``path`` in a fresh kernel with ``KDTUTOR_PROFILE=profile_name``, the CPU
    settings of :data:`kdtutor.CPU_ENVIRONMENT` (unless set) and the variables in ``env``; return it."""
    import nbformat
    from nbclient import NotebookClient

    from kdtutor import CPU_ENVIRONMENT

    nb = nbformat.read(path, as_version=4)
    env = {**{k: os.environ.get(k, v) for k, v in CPU_ENVIRONMENT.items()}, "KDTUTOR_PROFILE": profile_name, **(env or {})}
    old = {k: os.environ.get(k) for k in ("MPLBACKEND", *env)}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", extra_arguments=KERNEL_ARGUMENTS,
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


@contextlib.contextmanager
def mpl_backend(backend: str):
    """Within the block, lesson kernels started from this process draw with ``backend`` (``MPLBACKEND``);
    afterwards the caller's setting is back (so a smoke refresh's ``Agg`` cannot reach a later
    reference run, whose figures must be drawn inline into the notebook)."""
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = backend
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


def refresh_notebooks(paths=None) -> None:
    """Re-run notebooks in the smoke profile (Agg backend) and store the checked cells' outputs,
    stamped (:func:`coursetools.stored.stamp`); every other cell keeps what it stores."""
    with mpl_backend("Agg"):
        _refresh_notebooks(paths)


def _refresh_notebooks(paths) -> None:
    import nbformat

    from coursetools.stored import lesson_code, stamp

    for path in paths or notebooks():
        t0 = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        ran = [c for c in execute(Path(path), "smoke").cells if c.cell_type == "code"]
        for cell, new in zip([c for c in nb.cells if c.cell_type == "code"], ran):
            if is_checked(cell):
                cell.outputs, cell.execution_count = new.outputs, new.execution_count
                stamp(cell, "smoke", lesson_code(nb))
        write_notebook(nb, Path(path))
        print(f"refreshed {Path(path).name} in {time.perf_counter() - t0:.0f} s")


def run_course(profile_name: str | None = None, results_dir: Path | None = None, lessons=None) -> Path:
    """Execute every lesson in order; write executed copies and ``summary.md`` to
    ``<results_dir>/<profile>/`` (default ``results/``); return the summary path.

    The lessons write their metrics and figures there too (their ``KDTUTOR_RESULTS``
    is ``results_dir``). ``lessons``: only those whose file names start with one of
    these (e.g. ``["03", "04"]``).
    """
    from coursetools.stored import lesson_data, run_record
    from kdtutor.profiles import get_profile

    profile_name = get_profile(profile_name).name
    results_dir = Path(results_dir or RESULTS_DIR).resolve()
    out = results_dir / profile_name
    chosen = [p for p in notebooks() if lessons is None or p.name.startswith(tuple(lessons))]
    if not chosen:
        raise ValueError(f"no lesson matches {lessons}; the lessons are {[p.name for p in notebooks()]}")
    if lessons is None:  # this run's summary must not mix in an older run's numbers
        for stale in ("metrics", "figures"):
            shutil.rmtree(out / stale, ignore_errors=True)
    else:  # only the chosen lessons' metrics are replaced; the summary keeps the others'
        for path in chosen:
            for old in (out / "metrics").glob(f"{path.name[:2]}_*.json"):
                old.unlink()
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    expected = expected_seconds(profile_name, chosen)
    recorded = recorded_probe(profile_name)
    now = speedprobe.probe() if expected and recorded else None  # the recorded times at this machine's speed
    for line in header_lines(profile_name, chosen, out, expected, now):
        print(line, flush=True)
    if now:
        expected = speedprobe.predicted_seconds(expected, recorded, now)
    timings = []
    for i, path in enumerate(chosen, 1):
        t0 = time.perf_counter()
        guess = f"expected {_minutes(expected[path.stem])}" if path.stem in expected else "no recorded time"
        print(f"[{i}/{len(chosen)}] {path.name} ({guess}) …", flush=True)
        nb = execute(path, profile_name, env={"KDTUTOR_RESULTS": str(results_dir)})
        nb.metadata.setdefault("kdtutor", {})["run"] = run_record(nb, profile_name, lesson_data(out / "metrics", path.name), results_dir)
        write_notebook(nb, out / "notebooks" / path.name)
        timings.append((path.name, time.perf_counter() - t0))
        print(f"      done in {_minutes(timings[-1][1])}", flush=True)
    write_timings(profile_name, out, timings)
    total = sum(sec for _, sec in timings)
    print(f"all {len(chosen)} lessons done in {_minutes(total)}"
          + (f" (expected {_minutes(sum(expected.values()))})" if len(expected) == len(chosen) else ""), flush=True)
    return write_summary(profile_name, out, timings)


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def recorded_probe(profile_name: str) -> dict | None:
    """The speed probe (:mod:`coursetools.speedprobe`) taken before the recorded run of this profile, if any."""
    from coursetools.pace import load_pace

    return load_pace().get("runs", {}).get(profile_name, {}).get("environment", {}).get("probe_before")


def expected_seconds(profile_name: str, lessons: list[Path]) -> dict[str, float]:
    """``{lesson stem: seconds}`` of the chosen lessons in the last recorded run of this profile (pace.json)."""
    from coursetools.pace import load_pace

    run = load_pace().get("runs", {}).get(profile_name, {})
    return {p.stem: run["lessons"][p.stem] for p in lessons if p.stem in run.get("lessons", {})}


def data_lines(profile, lessons: list[Path]) -> list[str]:
    """What the chosen lessons will read, checked now (the same checks as ``kdtutor prepare``): one line per
    data set they need; a fallback to a stand-in is said loudly, with the banner the lessons would print."""
    import nbformat

    from coursetools.delivery import lesson_needs
    from kdtutor.images.data import standin_banner
    from kdtutor.machine import images_row, text_row
    from kdtutor.lm.text import text_standin_banner

    needs = {n for p in lessons for n in lesson_needs(nbformat.read(p, as_version=4))}
    lines = []
    for need, row, banner in (("images", images_row, standin_banner), ("text", text_row, text_standin_banner)):
        if need not in needs:
            continue
        _, result, detail = row(profile)
        lines.append(f"{need:<8}{detail}")
        if result == "FAIL":  # the real data cannot be had: the lessons fall back, and say so in every number
            lines.append(banner(f"the {profile.name} profile wants the real {need}, but none could be read or "
                                f"downloaded"))
        elif "stand-in" in detail or "NOT" in detail:
            lines.append(f"        (the {profile.name} profile uses generated stand-in data by design: not real images "
                         f"or text)")
    return lines


def header_lines(profile_name: str, lessons: list[Path], out: Path, expected: dict[str, float],
                 now: dict | None = None) -> list[str]:
    """The course run's first lines: profile, data (checked), expected time, where the results go. With ``now``
    (this machine's speed probe) the recorded time is also scaled to this machine's speed."""
    from kdtutor.profiles import get_profile

    profile = get_profile(profile_name)
    pace, speed = "", []
    if expected:
        from coursetools.pace import load_pace

        run = load_pace()["runs"][profile_name]
        pace = (f"expected ≈ {_minutes(sum(expected.values()))} for {len(expected)} of the {len(lessons)} lessons "
                f"(recorded {run['date']} on: {run['machine']}; a slower machine or a busy one takes longer)")
        if now:
            recorded = recorded_probe(profile_name)
            here = sum(speedprobe.predicted_seconds(expected, recorded, now).values())
            speed = [f"speed    this machine now, against the recorded run's: {speedprobe.describe(recorded, now)}"
                     f" — so ≈ {_minutes(here)} here"]
    return [f"kdtutor course run — profile {profile.name}: {len(lessons)} lessons, "
            f"{', '.join(p.stem[:2] for p in lessons)}",
            *data_lines(profile, lessons),
            pace or f"no recorded time for the {profile.name} profile yet",
            *speed,
            f"results  {out} (executed notebooks in notebooks/, summary.md at the end)",
            ""]


def write_timings(profile_name: str, out: Path, timings: list[tuple[str, float]]) -> Path:
    """``timings.json``: each lesson's seconds in this run, the machine's cores and load (for
    ``python -m coursetools pace``, which records a run in the lessons' time lines)."""
    path = out / "timings.json"
    info = {"profile": profile_name, "lessons": dict(timings), "cpu_count": os.cpu_count(),
            "load_average_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    atomic_write_bytes(path, (json.dumps(info, indent=1) + "\n").encode())
    return path


def write_summary(profile_name: str, out: Path, timings: list[tuple[str, float]]) -> Path:
    """``summary.md``: one page built from the metrics the lessons saved, plus run times."""
    metrics = _load_metrics(out / "metrics")
    lines = [f"# kdtutor course run — profile `{profile_name}`", ""]
    lines += (_data_lines(metrics) + _report_lines(metrics) + _distill_lines(metrics) + _beyond_lines(metrics)
              + _lm_lines(metrics))
    figures = sorted((out / "figures").glob("*.png")) if (out / "figures").exists() else []
    if figures:
        lines += ["## Figures", ""] + [f"![{f.stem}](figures/{f.name})" for f in figures] + [""]
    lines += ["## Run time", "", "| lesson | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.0f} |" for name, sec in timings]
    lines += ["", f"Total: {sum(s for _, s in timings):.0f} s. Executed notebooks are in `notebooks/`."]
    path = out / "summary.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    print(f"summary written to {path}")
    return path


def _load_metrics(folder: Path) -> dict:
    from kdtutor.storage import load_json

    return {p.stem: load_json(p) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


def _data_lines(metrics: dict) -> list[str]:
    if not metrics:
        return ["No lesson saved metrics in this run.", ""]
    first = next((m for name, m in metrics.items() if name != "07_lm"), None)  # lesson 07 names its text itself
    if first is None:
        return []
    lines = [f"Data set: **{first['dataset']}**.", ""]
    if first.get("is_standin"):
        lines += ["> **Stand-in data** (generated shapes, not CIFAR-10): the numbers below demonstrate the",
                  "> course's code paths and say nothing about CIFAR-10.", ""]
    return lines


def _pct(x) -> str:
    return f"{100 * x:.2f} %"


def _report_lines(metrics: dict) -> list[str]:
    report = metrics.get("05_report")
    if not report:
        return []
    rows = report["card"]
    any_row = next(iter(rows.values()))
    lat = sorted(any_row["latency_ms"], key=int)
    head = ["model", "test accuracy", "agreement with teacher", "ECE", "params", *[f"latency b{b} (ms)" for b in lat]]
    lines = [f"## Report card — {report['dataset']}, test split (N = {any_row['n']}), seed {report['seeds'][0]}", "",
             f"Student `{report['student']}` distilled from `{report['teacher']}` with T = {report['T']:g}, "
             f"α = {report['alpha']:g}; latency on {any_row['device']}.", "",
             "| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    order = sorted(rows, key=lambda n: (["teacher", "scratch", "distilled"] + [n]).index(n))
    for name in order:
        r = rows[name]
        lines.append("| " + " | ".join([name, _pct(r["accuracy"]), _pct(r["agreement"]), _pct(r["ece"]),
                                         f"{r['params']:,d}", *[f"{r['latency_ms'][b]:.3g}" for b in lat]]) + " |")
    lines += ["", f"Over seeds {report['seeds']} (test split, mean ± sample std):", "",
              "| student | accuracy | agreement | ECE |", "|---|---:|---:|---:|"]
    for kind, m in sorted(report["per_seed"].items(), key=lambda kv: kv[0] != "scratch"):
        cells = [_mean_std(m[k]) for k in ("accuracy", "agreement", "ece")]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return lines + [""]


def _mean_std(values) -> str:
    from kdtutor.images.stats import summarize_seeds

    s = summarize_seeds(values)
    return f"{100 * s.mean:.2f} ± {100 * s.std:.2f} %"


def _paired_lines(d: dict) -> list[str]:
    """Lesson 04's few-labels experiment on test: each arm's mean ± std per label count, the paired gains over
    scratch and the one rule's verdicts."""
    from kdtutor.images.few_labels import ARM_NAMES, FewLabels

    fl = d.get("few_labels")
    if not fl:
        return []
    r = FewLabels.from_dict(fl)
    lines = [f"### When distillation pays: `{d['student']}` with few labels and {d['n_train']:,d} unlabelled images, "
             "test accuracy (%)", "", r.table("test"), ""]
    for n in r.label_counts:
        lines += [f"- {n:,d} labels: {r.verdict(n)}; {r.verdict(n, 'kd')}."]
    return lines + ["", f"Arms: {'; '.join(ARM_NAMES.values())}; {fl['budget']['steps']} steps each.", ""]


def _distill_lines(metrics: dict) -> list[str]:
    lines = []
    if "03_teacher" in metrics:
        t = metrics["03_teacher"]
        trained_on = f" on {t['n_train']:,d} training images" if "n_train" in t else ""
        six = f", six-view TTA {_pct(t['test_acc_tta6'])}" if "test_acc_tta6" in t else ""
        lines += [f"Teacher `{t['arch']}`{trained_on}: test accuracy {_pct(t['test_acc'])} (flip TTA "
                  f"{_pct(t['test_acc_tta'])}{six}), {t['images_per_s']:,.0f} training images/s.", ""]
    d = metrics.get("04_distill")
    if d:
        dk = d["dark_knowledge"]
        sweep_seed = f" with seed {d['sweep_seed']}" if "sweep_seed" in d else ""
        lines += [f"Lesson 04 chose T = {d['T']:g}, α = {d['alpha']:g} on validation{sweep_seed} "
                  f"(sweep T ∈ {d['sweep']['temperatures']}, α ∈ {d['sweep']['alphas']}).", ""]
        lines += _paired_lines(d)
        lines += [
                  f"Dark knowledge on {dk['dataset']}: with no 3 in the transfer set, test 3s recognised — "
                  + ", ".join(f"{k}: {_pct(v)}" for k, v in dk["recall3"].items()) + ".", ""]
    return lines


def _beyond_lines(metrics: dict) -> list[str]:
    """Lesson 06: KD, DKD and LS-KD compared fairly, the verdicts, the side experiments and the
    gains the usual shortcuts would report."""
    from kdtutor.images.comparison import comparison_table, published_style_lines, verdict_lines

    d = metrics.get("06_beyond")
    if not d:
        return []
    lines = [f"## Lesson 06 — beyond Hinton's loss, compared fairly on {d['dataset']}", ""]
    if d.get("is_standin"):
        lines += ["> **Stand-in data** (generated shapes, not CIFAR-10): these numbers only show that the code runs.", ""]
    lines += [f"Student `{d['student']}` on {d['n_train']:,d} training images, {d['epochs']} epochs; teacher "
              f"`{d['teacher']}` ({_pct(d['teacher_test_acc'])} test). Every method at its reference settings; "
              f"its learning rate (two candidates) chosen on validation at seed {d['sweep_seed']}; then seeds "
              f"{d['seeds']}, test split (N = {d['n_test']:,d}), mean ± std.", ""]
    lines += comparison_table(d["table"], d["seeds"]) + [""]
    lines += verdict_lines(d["table"]) + [""]
    side = d.get("side")
    if side:
        lines += [f"Side experiments (one seed, {side['seed']}; no verdict): test accuracy "
                  + ", ".join(f"{k} {_pct(v)}" for k, v in side["test_acc"].items())
                  + f"; KD on that seed {_pct(side['kd_test_acc'])}.", ""]
    lines += ["Gain over KD (points) read from the same runs honestly and with three common shortcuts:", ""]
    lines += published_style_lines(d["published_style"]) + [""]
    return lines


def _lm_lines(metrics: dict) -> list[str]:
    """Lesson 07: bits/char, KL to the teacher and sample diversity per method (its own text, its own label)."""
    from kdtutor.lm.evaluate import lm_table

    d = metrics.get("07_lm")
    if not d:
        return []
    lines = [f"## Lesson 07 — distilling a character model on {d['dataset']}", ""]
    if d.get("is_standin"):
        lines += ["> **Stand-in text** (generated words, not Shakespeare): the numbers below only show that the",
                  "> code runs.", ""]
    s = d["sizes"]
    start = (f"all from the scratch student's weights after {round(s['student_steps'] * s['midpoint'])} of them, "
             f"mean of {len(d['seeds'])} training seeds after that" if "midpoint" in s and d.get("seeds")
             else "same initial weights")
    lines += [f"Teacher {d['params']['teacher']:,d} parameters, {s['teacher_steps']} steps; students "
              f"{d['params']['student']:,d} parameters, {s['student_steps']} steps each of {s['batch']} windows × "
              f"{s['block']} characters, {start}. Held-out ({d['split']}) scores on "
              f"{d['n_chars']:,d} characters; KLs in bits per character; diversity of {s['n_samples']} samples of "
              f"{s['sample_len']} characters per model.", ""]
    order = [n for n in ["teacher", *d.get("methods", [])] if n in d["results"]]  # the JSON's keys are sorted
    results = {n: d["results"][n] for n in order + sorted(set(d["results"]) - set(order))}
    lines += lm_table(results, d.get("reference_diversity"), d.get("seconds"))
    top = d.get("topk")
    if top:
        ratio = top["full_bytes_per_position"] / top["bytes_per_position"]
        lines += ["", f"Top-{top['k']} teacher targets: {top['bytes_per_position']:.0f} bytes per position instead of "
                      f"{top['full_bytes_per_position']:.0f} for all logits ({ratio:.1f}× less)."]
    return lines + [""]
