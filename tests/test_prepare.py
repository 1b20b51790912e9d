"""``python -m kdtutor prepare``: the environment and data table, its failures, and idempotent pre-training."""

import pytest

from kdtutor import storage
from kdtutor.classroom import prepare
from kdtutor.images import train
from kdtutor.profiles import get_profile


def test_the_smoke_profile_prepares_with_every_row_passing():
    lines = []
    assert prepare.prepare("smoke", out=lines.append) == 0
    table = lines[0].splitlines()
    rows = {line.split()[0]: line.split()[1] for line in table[1:]}
    for name in ("python", "torch", "torchvision", "device", "disk", "images", "text", "total"):
        assert rows[name] == "PASS", lines[0]
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


@pytest.mark.slow
def test_pretraining_saves_the_teacher_and_students_where_the_lessons_look_and_reuses_them(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "CHECKPOINT_DIR", tmp_path)
    monkeypatch.setattr(train, "CHECKPOINT_DIR", tmp_path)
    tiny = get_profile("smoke").with_(n_train=300, n_train_teacher=300, n_val=100, n_test=100, teacher_epochs=1,
                                      student_epochs=1, seeds=(1,), temperatures=(4.0,), alphas=(0.5,))
    rows = prepare.pretrain_rows(tiny)
    assert [r[:2] for r in rows] == [("teacher", "PASS"), ("students", "PASS")]
    saved = sorted(tmp_path.rglob("*.pt"))
    assert [p.relative_to(tmp_path).as_posix() for p in saved] == [
        "students_smoke/cnn_tiny_kd_T4_a0.5_seed1.pt", "students_smoke/cnn_tiny_scratch_seed1.pt",
        "teacher_smoke_airbench_small.pt"]
    assert train.teacher_path(tiny) == tmp_path / "teacher_smoke_airbench_small.pt"  # lessons 03–05's path
    stamps = {p: p.stat().st_mtime_ns for p in saved}
    prepare.pretrain_rows(tiny)  # a second run (or one after an interruption) reuses what is saved
    assert {p: p.stat().st_mtime_ns for p in saved} == stamps
