"""``python -m kdtutor prepare``: the environment and data table, its failures, and idempotent pre-training."""

import pytest

from coursetools import prepare as workshop
from kdtutor import machine as prepare
from kdtutor.profiles import get_profile


def test_the_smoke_profile_prepares_with_every_row_passing():
    lines = []
    assert prepare.prepare("smoke", out=lines.append) == 0
    table = lines[0].splitlines()
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    for name in ("python", "torch", "torchvision", "device", "disk", "images", "text", "total"):
        assert rows[name] == "PASS", lines[0]
    assert rows["wheels"] in ("PASS", "WARN")  # WARN: a CUDA build without an NVIDIA GPU (this machine's fallback)
    assert "stand-in" in lines[0]  # the smoke data is labelled as a stand-in


def test_versions_are_compared_as_numbers_not_text():
    assert prepare.version_row("torch", "2.11.0+cu128")[1] == "PASS"
    assert prepare.version_row("torch", "2.2.9")[1] == "FAIL"
    assert prepare.version_row("torchvision", "0.9.0")[1] == "FAIL"  # "0.9" > "0.18" as text, not as versions
    assert prepare.version_row("python", "3.10.0")[1] == "PASS"


def test_an_unwritable_folder_and_too_little_disk_fail(tmp_path):
    (tmp_path / "a_file").write_text("x")
    assert prepare.write_row("data", tmp_path / "a_file" / "sub")[1] == "FAIL"  # fails even as root
    assert prepare.write_row("data", tmp_path / "new" / "sub")[1] == "PASS"
    assert prepare.disk_row(tmp_path, min_gb=1e9)[1] == "FAIL"


def test_missing_real_data_fails_instead_of_falling_back_to_the_standin(tmp_path, monkeypatch):
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "no-such.tar.gz"))
    monkeypatch.setenv("KDTUTOR_TEXT", str(tmp_path / "no-such.txt"))
    lines = []
    assert prepare.prepare("cpu", data_only=True, out=lines.append) == 1
    rows = {line.split()[0]: line.split()[1] for line in lines[0].splitlines()[1:]}
    assert rows["images"] == rows["text"] == rows["total"] == "FAIL"
    assert "python" not in rows  # --data-only: the setup cell's fetch, no environment rows


def test_pretraining_runs_every_lesson_of_the_profile_and_reports_each(tmp_path, monkeypatch):
    from coursetools import course
    calls = []

    def fake_run(profile_name, results_dir=None):
        calls.append((profile_name, results_dir))
        out = tmp_path / profile_name
        out.mkdir(parents=True, exist_ok=True)
        course.write_timings(profile_name, out, [(p.name, 12.0) for p in course.notebooks()])
        return out / "summary.md"

    monkeypatch.setattr(course, "run_course", fake_run)
    rows = workshop.pretrain_rows(get_profile("smoke"), results_dir=tmp_path)
    assert calls == [("smoke", tmp_path)]
    assert [r[0] for r in rows] == [p.stem for p in course.notebooks()] and {r[1] for r in rows} == {"PASS"}

    def failing(profile_name, results_dir=None):
        raise RuntimeError("lesson 06 failed: CUDA out of memory")

    monkeypatch.setattr(course, "run_course", failing)
    assert workshop.pretrain_rows(get_profile("smoke")) == [
        ("pretrain", "FAIL", "a lesson failed (RuntimeError): lesson 06 failed: CUDA out of memory")]


@pytest.mark.slow
def test_a_second_course_run_of_lessons_04_and_06_retrains_nothing(tmp_path, monkeypatch):
    """What coursetools pretrain relies on: after one run, every model the lessons train is kept and reused."""
    from coursetools import course
    monkeypatch.setenv("KDTUTOR_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    course.run_course("smoke", results_dir=tmp_path / "results", lessons=["04", "06"])
    saved = {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.pt")}
    assert any("lesson06_smoke" in str(p) for p in saved)  # lesson 06's students
    assert any("few_labels_smoke" in str(p) and "kd+unlabelled" in p.name for p in saved)  # lesson 04's three arms
    assert any("few_labels_smoke" in str(p) and "_scratch_" in p.name for p in saved)
    course.run_course("smoke", results_dir=tmp_path / "results", lessons=["04", "06"])
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "data").rglob("*.pt")} == saved
