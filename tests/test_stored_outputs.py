"""The reference run stored in the lessons (coursetools.stored): current, labelled, compact."""

import base64
import copy
import io
import os
import re
from pathlib import Path

import nbformat
import pytest

from coursetools import stored
from coursetools.book import INLINE_BACKEND
from coursetools.course import is_checked, notebooks, write_notebook

ROOT = Path(__file__).resolve().parent.parent
MAX_NOTEBOOK_BYTES = 4_000_000  # all eight lessons with the reference run's outputs (issue 24: ≤ ~5 MB added)
# Whether the stored lessons' stamps record the kdtutor source that made them (stored.lesson_code). The
# stamps of the run stored before that field existed do not: set True after `make notebooks PROFILE=cpu`.
STAMPS_RECORD_CODE = True


def _read(path):
    return nbformat.read(path, as_version=4)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_every_stored_output_was_made_from_the_cells_current_source_and_profile(path):
    stale = stored.stale_cells(_read(path), path.name, code=STAMPS_RECORD_CODE)
    assert not stale, "\n".join(stale) + "\n" + stored.refresh_hint(path.name)


def _current(nb):
    """``nb`` as a refresh on this kdtutor source would stamp it (the stored outputs kept as they are)."""
    for cell in nb.cells:
        if cell.cell_type == "code" and "output" in cell.metadata.get("kdtutor", {}):
            cell.metadata["kdtutor"]["output"]["code"] = stored.lesson_code(nb)
    return nb


def test_an_edited_cell_is_named_stale_until_refreshed():
    path = next(p for p in notebooks() if p.name.startswith("04"))
    nb = _current(_read(path))
    i, cell = next((i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.outputs and not is_checked(c))
    assert stored.stale_cells(nb, path.name) == []
    cell.source += "\nprint('edited')"
    stale = stored.stale_cells(nb, path.name)
    assert len(stale) == 1 and f"{path.name} cell {i} " in stale[0] and "source changed" in stale[0], stale
    stored.stamp(cell, "cpu", stored.lesson_code(nb))  # what a refresh records
    assert stored.stale_cells(nb, path.name) == []


def test_a_new_cell_a_changed_profile_and_a_checked_cell_with_cpu_outputs_are_stale(monkeypatch):
    nb = _read(next(p for p in notebooks() if p.name.startswith("03")))
    new = copy.deepcopy(nb)
    new.cells.append(nbformat.v4.new_code_cell("print(1)"))
    assert "no record" in stored.stale_cells(new)[-1]
    checked = copy.deepcopy(nb)
    cell = next(c for c in checked.cells if is_checked(c))
    stored.stamp(cell, "cpu", stored.lesson_code(nb))
    assert any("checked cell" in p for p in stored.stale_cells(checked))
    real = stored.settings_hash
    monkeypatch.setattr(stored, "settings_hash", lambda name: "0" * 16 if name == "cpu" else real(name))
    assert any("cpu profile's settings changed" in p for p in stored.stale_cells(nb))


@pytest.mark.parametrize("module, stale", [("kdtutor.images.models", True), ("kdtutor.images.metrics", True),
                                           ("kdtutor.kd.losses", True), ("kdtutor.machine", False)])
def test_a_package_change_the_lesson_runs_makes_its_outputs_stale(module, stale, monkeypatch):
    """Issue 36.6c: a changed activation or ECE's default bins (models.py, metrics.py) changes what lessons
    03-05 show, so their stored outputs are stale; an edit to a module no lesson imports (kdtutor.machine) is not."""
    from kdtutor import __version__, fingerprint

    path = next(p for p in notebooks() if p.name.startswith("04"))
    nb = _current(_read(path))
    assert stored.stale_cells(nb, path.name) == []
    real = fingerprint._source
    monkeypatch.setattr(fingerprint, "_source", lambda m: real(m) + (b"\n# edited\n" if m == module else b""))
    found = stored.stale_cells(nb, path.name)
    if not stale:
        assert found == []
        return
    n = sum(c.cell_type == "code" for c in nb.cells)
    assert len(found) == n and all("kdtutor source this lesson runs changed" in p for p in found), found[:2]
    monkeypatch.undo()
    assert stored.stale_cells(nb, path.name) == []
    monkeypatch.setattr("kdtutor.__version__", __version__ + ".1")  # another version, same source
    assert all("made by kdtutor" in p for p in stored.stale_cells(nb, path.name))


def test_a_stamp_without_the_code_it_was_made_by_is_stale():
    path = next(p for p in notebooks() if p.name.startswith("03"))
    nb = _current(_read(path))
    cell = next(c for c in nb.cells if c.cell_type == "code")
    del cell.metadata["kdtutor"]["output"]["code"]
    (problem,) = stored.stale_cells(nb, path.name)
    assert "does not say which kdtutor source" in problem
    assert stored.stale_cells(nb, path.name, code=False) == []


def test_settings_hash_follows_every_profile_setting():
    import dataclasses

    from kdtutor import profiles

    cpu = profiles.get_profile("cpu")
    other = dataclasses.replace(cpu, student_epochs=cpu.student_epochs + 1)
    original = profiles.get_profile

    def patched(name=None):
        return other if name == "cpu" else original(name)

    before = stored.settings_hash("cpu")
    profiles.get_profile = patched
    try:
        assert stored.settings_hash("cpu") != before
    finally:
        profiles.get_profile = original
    assert stored.settings_hash("cpu") == before and stored.settings_hash("smoke") != before


def test_notebooks_stay_small_in_git():
    total = sum(p.stat().st_size for p in notebooks())
    assert total <= MAX_NOTEBOOK_BYTES, f"the lessons take {total / 1e6:.2f} MB (bound {MAX_NOTEBOOK_BYTES / 1e6:.1f} MB)"


def test_lessons_are_readable_before_they_run():
    rows = stored.summary_of_lessons()
    for row in rows:
        if row["lesson"][:2] in {"03", "04", "05", "06", "07"}:
            assert row["figures"] >= 3, row
    share = sum(r["with_outputs"] for r in rows) / sum(r["code_cells"] for r in rows)
    assert share >= 0.8, f"only {share:.0%} of the code cells store outputs"


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_stored_figures_and_tables_name_their_run(path):
    nb = _read(path)
    run = nb.metadata["kdtutor"]["reference_run"]
    assert run["profile"] == stored.REFERENCE and ("CPU" in run["machine"] or "GPU" in run["machine"]), run
    want = {"00": None, "01": None, "02": None, "07": "tiny Shakespeare",
            "08": "4 classes of CIFAR-10 (JPEG copy), mixed sizes (resized to 32×32)"}.get(path.name[:2],
                                                                                        "CIFAR-10 (JPEG copy)")
    assert run["data"] == want, run
    for i, cell in enumerate(nb.cells):
        outs = cell.get("outputs", [])
        if cell.cell_type == "code" and not is_checked(cell) and stored.shows_figure_or_table(outs):
            label = outs[-1]["data"]["text/markdown"]
            assert label == f"<sub>{stored.label_text(run)}</sub>", f"{path.name} cell {i}: {label}"
            assert "profile cpu" in label and run["machine"] in label and (want or "no data set") in label


def test_stored_pngs_are_palette_images_and_no_progress_bar_or_widget_state_is_stored():
    from PIL import Image

    for path in notebooks():
        nb = _read(path)
        assert "widgets" not in nb.metadata
        for cell in nb.cells:
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                assert stored.WIDGET not in data, f"{path.name}: a widget output is stored"
                if "image/png" in data and not is_checked(cell):
                    assert Image.open(io.BytesIO(base64.b64decode(data["image/png"]))).mode == "P"


def _ran(outputs, source="x = 1"):
    cell = nbformat.v4.new_code_cell(source, execution_count=3, outputs=outputs)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# NBVAL_CHECK_OUTPUT\nprint(1)"),
                                         nbformat.v4.new_code_cell(source)])
    ran = copy.deepcopy(nb)
    ran.cells[0].outputs = [nbformat.v4.new_output("stream", text="from the cpu run\n")]
    ran.cells[1] = cell
    return nb, ran


def _png(size=(40, 30)):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", size, (200, 30, 30, 255)).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


RUN = {"profile": "cpu", "data": "CIFAR-10 (JPEG copy)", "machine": "2-core CPU (x86_64), no GPU", "version": "0.1.0",
       "finished": "2026-12-04", "inputs": "x", "paths": {"/home/ann/kd-data": "data", "/home/ann": "."}}


def test_merge_takes_the_runs_outputs_compacted_and_labelled_and_keeps_checked_cells():
    from PIL import Image

    bar = nbformat.v4.new_output("display_data", data={stored.WIDGET: {"model_id": "a"},
                                                       "text/plain": "epoch 1/3:   0%|          | 0/175"})
    fig = nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    nb, ran = _ran([bar, nbformat.v4.new_output("stream", text="accuracy 61 %, saved to /home/ann/kd-data/x.pt\n"), fig])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    stored.merge(nb, ran, RUN)
    assert nb.cells[0].outputs[0]["text"] == "1\n"  # the checked cell keeps the smoke run's output
    outs = nb.cells[1].outputs
    assert [o.output_type for o in outs] == ["stream", "display_data", "display_data"]  # the progress bar is gone
    assert outs[0]["text"] == "accuracy 61 %, saved to data/x.pt\n"  # the run machine's folder, written short
    image = Image.open(io.BytesIO(base64.b64decode(outs[1]["data"]["image/png"])))
    assert image.mode == "P" and image.size == (40, 30) and image.convert("RGB").getpixel((5, 5)) == (200, 30, 30)
    assert "CIFAR-10 (JPEG copy)" in outs[2]["data"]["text/markdown"]
    assert nb.cells[1].metadata["kdtutor"]["output"]["source"] == stored.source_hash("x = 1")
    assert nb.metadata["kdtutor"]["reference_run"]["machine"] == RUN["machine"]


def test_merge_refuses_a_failed_run_another_lessons_cells_and_a_figure_in_a_checked_cell():
    nb, ran = _ran([nbformat.v4.new_output("error", ename="RuntimeError", evalue="boom", traceback=[])])
    with pytest.raises(ValueError, match="failed"):
        stored.merge(nb, ran, RUN)
    nb, ran = _ran([], source="y = 2")
    nb.cells[1].source = "y = 3"
    with pytest.raises(ValueError, match="differs"):
        stored.merge(nb, ran, RUN)
    nb, ran = _ran([])
    ran.cells[0].outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png()})]
    with pytest.raises(ValueError, match="draws a figure"):
        stored.merge(nb, ran, RUN)


def _widget(text):
    return nbformat.v4.new_output("display_data", data={stored.WIDGET: {"model_id": "a"}, "text/plain": text})


def test_a_progress_bar_is_dropped_with_or_without_a_total_and_a_real_widget_gets_the_placeholder():
    import ipywidgets
    from tqdm.std import tqdm

    bars = [tqdm.format_meter(0, 175, 0, prefix="epoch 1/3"), tqdm.format_meter(3, 10, 30, prefix="seeds"),
            tqdm.format_meter(0, None, 0, prefix="reading", unit=" files"),  # no total: no percentage
            tqdm.format_meter(45000, None, 3.2, prefix="reading", unit=" files"), tqdm.format_meter(7, None, 70)]
    assert "%" not in bars[2] and "%" not in bars[4]
    assert stored.compact_outputs([_widget(b) for b in bars]) == []
    real = [repr(ipywidgets.FloatLogSlider(value=1.0)), repr(ipywidgets.VBox([ipywidgets.FloatSlider()])),
            "interactive(children=(FloatSlider(value=1.0, description='T'),))"]
    for text in real:
        kept = stored.compact_outputs([_widget(text)])
        assert [o["metadata"]["kdtutor"] for o in kept] == [stored.WIDGET_CLASS], text
    assert stored.makes_widget("temperature_explorer(cat_logits, classes, T=1.0)")
    assert stored.makes_widget("w = widgets.FloatLogSlider(min=-1)") and not stored.makes_widget("print(dataset)")


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_a_widget_placeholder_is_stored_only_where_the_cell_builds_a_widget(path):
    nb = _read(path)
    wrong = [stored.cell_name(path.name, i, c) for i, c in enumerate(nb.cells)
             if any(o.get("metadata", {}).get("kdtutor") == stored.WIDGET_CLASS for o in c.get("outputs", []))
             and not stored.makes_widget(c.source)]
    assert not wrong, "a widget placeholder in a cell that builds no widget (a progress bar's?): " + "; ".join(wrong)


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_no_stored_output_names_a_folder_of_the_run_machine(path):
    found = stored.private_paths(_read(path), path.name)
    assert not found, "\n".join(found) + "\nfix: python -m coursetools tidy-outputs " + path.name[:2]


def test_private_paths_are_found_and_the_data_variables_written_as_their_names(monkeypatch, tmp_path):
    nb, ran = _ran([nbformat.v4.new_output("stream", text="read from: /work/shared/data/cifar10-jpeg.tar.gz\n"),
                    nbformat.v4.new_output("stream", text="text from /work/shared/data/tiny.txt; cache /tmp/x; /home/ann\n")])
    nb.cells[1].outputs = ran.cells[1].outputs
    assert [f.split(": a private path")[0] for f in stored.private_paths(nb, "lesson")] == ["lesson cell 1 ('x = 1')"] * 2
    env = {"KDTUTOR_CIFAR10": "/work/shared/data/cifar10-jpeg.tar.gz", "KDTUTOR_TEXT": " /work/shared/data/tiny.txt "}
    paths = {**stored.data_variables(env), "/home/ann": "."}
    stored.merge(nb, ran, dict(RUN, paths=paths))
    texts = [o["text"] for o in nb.cells[1].outputs]
    assert texts == ["read from: $KDTUTOR_CIFAR10\n", "text from $KDTUTOR_TEXT; cache /tmp/x; .\n"]
    assert [f for f in stored.private_paths(nb) if "/tmp/x" not in f] == []  # only the folder not in paths is left
    assert stored.relative_paths({"text": "/home/anna/x"}, {"/home/ann": "."})["text"] == "/home/anna/x"  # not a prefix


def test_tidy_stored_rewrites_paths_labels_placeholders_and_alt_text_in_place_keeping_the_stamps():
    run = {k: RUN[k] for k in ("profile", "data", "machine", "version", "finished")}
    old_label = stored.label_output(run)
    old_label["data"] = {k: v[:-1] + " Run the cell to see your own." + v[-1] for k, v in old_label["data"].items()}
    bar = nbformat.v4.new_output("display_data", data={"text/plain": "[an interactive widget: run the cell to use it]"},
                                 metadata={"kdtutor": stored.WIDGET_CLASS})
    fig = nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("## 3. Training\n\ntext"),
        nbformat.v4.new_code_cell("d = load()\nprint(d.source)", outputs=[
            bar, nbformat.v4.new_output("stream", text="read from: /home/ann/kd-data/cifar\n")]),
        nbformat.v4.new_code_cell("fig = lesson03.learning_curves(h, title='t')", outputs=[fig, old_label]),
        nbformat.v4.new_code_cell("temperature_explorer(z, names)", outputs=[copy.deepcopy(bar)])])
    nb.metadata["kdtutor"] = {"reference_run": run}
    for cell in nb.cells[1:]:
        stored.stamp(cell, "cpu", None)
    assert stored.tidy_stored(nb, {"/home/ann/kd-data": "data"})
    assert [o.output_type for o in nb.cells[1].outputs] == ["stream"]  # not a widget: the placeholder is gone
    assert nb.cells[1].outputs[0]["text"] == "read from: data/cifar\n"
    assert nb.cells[2].outputs[1]["data"]["text/markdown"] == f"<sub>{stored.label_text(run)}</sub>"
    assert "Run the cell" not in stored.label_text(run)
    alt = nb.cells[2].metadata["mystnb"]["image"]["alt"]
    assert alt.startswith("3. Training — learning curves (lesson03.learning_curves)") and "CIFAR-10" in alt
    assert nb.cells[3].outputs[0]["metadata"]["kdtutor"] == stored.WIDGET_CLASS  # a real widget keeps its line
    assert stored.stale_cells(nb, code=False) == []
    assert not stored.tidy_stored(nb, {"/home/ann/kd-data": "data"})  # nothing left to change


@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.name)
def test_every_stored_figure_has_alt_text_that_says_what_it_shows(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if any(k.startswith("image/") for o in cell.get("outputs", []) for k in o.get("data", {})):
            alt = cell.metadata.get("mystnb", {}).get("image", {}).get("alt", "")
            name = stored.cell_name(path.name, i, cell)
            assert len(alt.split()) >= 4 and not re.fullmatch(r"[0-9a-f]{16,}(\.png)?", alt.strip()), f"{name}: alt {alt!r}"
            assert "reference run" in alt, f"{name}: alt {alt!r}"


def test_no_stored_output_tells_a_reader_of_the_website_to_run_the_cell():
    for path in notebooks():
        text = "".join(str(o) for c in _read(path).cells for o in c.get("outputs", []))
        assert "Run the cell to see your own" not in text, path.name


def _equation_rows(markdown):
    """Per display equation ($$…$$) of a markdown text: the printed symbols of its widest row (rows split
    at \\; commands, braces, spaces, & and ^/_ not counted), a rough measure of its width."""
    widths = []
    for match in re.finditer(r"\$\$(.*?)\$\$", markdown, re.S):
        body = re.sub(r"\\(begin|end)\{\w+\}", "", match.group(1))
        widths.append(max(len(re.sub(r"\\[a-zA-Z]+|[{}\s&^_]", "", row)) for row in re.split(r"\\\\", body)))
    return widths


def test_display_equations_fit_the_websites_text_column():
    # the site's column (784 px) holds ≈ 70 such symbols; lesson 07's one-row equation had 94 and took 1,105 px
    wide = [f"{p.name} cell {i}: {w}" for p in notebooks() for i, c in enumerate(_read(p).cells)
            if c.cell_type == "markdown" for w in _equation_rows(c.source) if w > 65]
    assert not wide, "display equations too wide for the site (split them with aligned): " + "; ".join(wide)
    assert _equation_rows("$$a = b$$ and $$\\begin{aligned} x &= 1,\\\\ y + z &= 22 \\end{aligned}$$") == [3, 6]


def test_an_executed_lesson_is_reused_only_when_current():
    from kdtutor import __version__

    nb, ran = _ran([])
    assert "records no run" in stored.not_current(ran, nb, "cpu")
    ran.metadata["kdtutor"] = {"run": stored.run_record(ran, "cpu", None)}
    assert stored.not_current(ran, nb, "cpu") is None
    assert "other settings" in stored.not_current(ran, nb, "smoke")
    edited = copy.deepcopy(nb)
    edited.cells[1].source = "x = 2"
    assert "code cell 1" in stored.not_current(ran, edited, "cpu")
    ran.metadata["kdtutor"]["run"]["code"] = "0" * 16  # made by other kdtutor source
    assert "other kdtutor code" in stored.not_current(ran, nb, "cpu")
    ran.metadata["kdtutor"]["run"]["version"] = __version__ + ".old"
    assert "kdtutor" in stored.not_current(ran, nb, "cpu")


def test_the_readme_shows_the_stored_figures_and_links_the_site():
    from coursetools.delivery import config, pages_url

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = re.findall(r"!\[[^\]]*\]\((book/figures/[^)]+\.png)\)", readme)
    assert len(shown) >= 2, shown
    exported = {p.name: p for p in stored.FIGURE_DIR.glob("*.png")}
    tagged = {f"{p.name[:2]}-{name}.png": png for p in notebooks() for name, png in stored.tagged_figures(_read(p)).items()}
    assert set(exported) == set(tagged), (sorted(exported), sorted(tagged))
    for name, png in tagged.items():
        assert exported[name].read_bytes() == base64.b64decode(png), f"{name} is not the lesson's stored figure"
    for link in shown:
        assert Path(link).name in tagged, link
    assert pages_url(config()) in readme


def test_refreshing_the_checked_outputs_keeps_the_reference_runs(monkeypatch, tmp_path):
    from coursetools import course

    nb, _ = _ran([])
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="from the cpu run\n")]
    stored.stamp(nb.cells[1], "cpu", stored.lesson_code(nb))
    path = tmp_path / "03_x.ipynb"
    write_notebook(nb, path)

    def smoke_run(p, profile_name, **kw):
        ran = copy.deepcopy(nb)
        for cell in ran.cells:
            cell.outputs = [nbformat.v4.new_output("stream", text=f"smoke: {cell.source}\n")]
        return ran

    monkeypatch.setattr(course, "execute", smoke_run)
    monkeypatch.setenv("MPLBACKEND", "the caller's")
    course.refresh_notebooks([path])
    assert os.environ["MPLBACKEND"] == "the caller's", "the smoke refresh's Agg must not leak into a later reference run"
    after = _read(path)
    assert after.cells[0].outputs[0]["text"].startswith("smoke:")
    assert after.cells[0].metadata["kdtutor"]["output"]["profile"] == "smoke"
    assert after.cells[1].outputs[0]["text"] == "from the cpu run\n"
    assert stored.stale_cells(after) == []


def test_store_reference_reuses_a_current_finished_run_and_exports_the_tagged_figure(monkeypatch, tmp_path):
    from coursetools import course

    nb, ran = _ran([nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})])
    nb.cells[1].metadata["kdtutor"] = {"figure": "demo"}
    ran.cells[1].metadata["kdtutor"] = {"figure": "demo"}
    ran.metadata["kdtutor"] = {"run": stored.run_record(ran, "cpu", "CIFAR-10 (JPEG copy)")}
    lesson = tmp_path / "notebooks" / "04_demo.ipynb"
    lesson.parent.mkdir()
    write_notebook(nb, lesson)
    write_notebook(ran, tmp_path / "results" / "cpu" / "notebooks" / lesson.name)
    monkeypatch.setattr(course, "run_course", lambda *a, **k: pytest.fail("a current run must not be run again"))
    stored.store_reference([lesson], "cpu", tmp_path / "results", figures=tmp_path / "figures", lessons=[lesson])
    cell = _read(lesson).cells[1]
    assert "CIFAR-10 (JPEG copy)" in cell.outputs[-1]["data"]["text/markdown"]
    assert (tmp_path / "figures" / "04-demo.png").read_bytes() == base64.b64decode(cell.outputs[0]["data"]["image/png"])


def test_the_pages_workflow_builds_the_site_with_make_book_from_the_stored_outputs():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    steps = flow["jobs"]["build"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    assert runs == ["make book PYTHON=python"], runs  # the same command as on a laptop and in the tests
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact"))
    assert upload["with"]["path"] == "build/book/html"
    recipe = (ROOT / "Makefile").read_text().split("\nbook:", 1)[1].split("\n\n", 1)[0]
    assert "coursetools book $(if $(BOOK_PROFILE)" in recipe and "BOOK_PROFILE ?=\n" in (ROOT / "Makefile").read_text()


def test_the_summary_page_names_the_run_and_leaves_the_figures_to_the_lessons(tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# run\n\nData set: x.\n\n## Figures\n\n![a](figures/a.png)\n\n## Run time\n\n| lesson | s |\n")
    page = stored.write_summary_page(summary, RUN, tmp_path / "page.md").read_text()
    assert RUN["machine"] in page and "## Figures" not in page and "figures/a.png" not in page and "## Run time" in page


def test_store_reference_runs_again_only_the_lessons_whose_finished_run_is_not_current(monkeypatch, tmp_path):
    from coursetools import course

    nb, ran = _ran([nbformat.v4.new_output("stream", text="new\n")])
    stored.stamp(nb.cells[0], "smoke", stored.lesson_code(nb))  # the checked cell, as refresh_notebooks leaves it
    ran.metadata["kdtutor"] = {"run": stored.run_record(ran, "cpu", None)}
    folder = tmp_path / "results" / "cpu" / "notebooks"
    lessons = {name: tmp_path / name for name in ("03_a.ipynb", "04_b.ipynb")}
    for name, path in lessons.items():
        write_notebook(nb, path)
        write_notebook(ran, folder / name)
    old = copy.deepcopy(ran)
    old.cells[1].source = "x = 0"  # lesson 04's finished run was made from an older cell
    write_notebook(old, folder / "04_b.ipynb")
    calls = []

    def run_course(profile_name, results_dir, lessons):
        calls.append((profile_name, lessons))
        assert os.environ["MPLBACKEND"] == INLINE_BACKEND, "a reference run must draw its figures inline"
        write_notebook(ran, folder / "04_b.ipynb")

    monkeypatch.setattr(course, "run_course", run_course)
    monkeypatch.setenv("MPLBACKEND", "Agg")  # as after a smoke refresh, or under make test
    stored.store_reference(list(lessons.values()), "cpu", tmp_path / "results", figures=tmp_path / "f", lessons=[])
    assert calls == [("cpu", ["04"])] and os.environ["MPLBACKEND"] == "Agg"
    for path in lessons.values():
        assert _read(path).cells[1].outputs[0]["text"] == "new\n" and stored.stale_cells(_read(path)) == []
