"""Settings, texts and checkpoints as users have them (issue 23): `prepare` fails on a variable the user set
that points at something unusable, whatever the profile; the command line checks every argument before
any data are loaded; errors advise deleting only files kdtutor wrote."""

import pytest

from kdtutor import storage
from kdtutor.__main__ import main
from kdtutor import machine as prepare
from kdtutor.images.models import build_model
from kdtutor.images.standin import STANDIN_NAME
from kdtutor.lm.text import TEXT_ENV, load_text
from kdtutor.profiles import get_profile
from kdtutor.storage import CorruptFileError, load_checked


@pytest.fixture
def no_data(monkeypatch):
    """Fail the test if anything loads a data set (every check must come first)."""
    import kdtutor.images.data

    def refuse(*a, **k):
        raise AssertionError("the data were loaded before the arguments were checked")

    monkeypatch.setattr(kdtutor.images.data, "load_dataset", refuse)


def teacher_file(path, **meta):
    """A real kdtutor checkpoint of an untrained cnn_tiny (meta: the smoke profile's data set unless given)."""
    from kdtutor.checkpoints import save_checkpoint

    base = {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32, "dataset": STANDIN_NAME}
    return save_checkpoint(path, build_model("cnn_tiny"), {**base, **meta})


def rows_of(lines) -> dict:
    return {line.split()[0]: line for line in lines[0].splitlines()[1:]}


# --------------------------------------------------------------------------- prepare
def test_prepare_smoke_fails_when_kdtutor_cifar10_points_at_garbage(tmp_path, monkeypatch):
    (tmp_path / "c10.tar.gz").write_bytes(b"\x1f\x8b" + bytes(500))
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "c10.tar.gz"))
    monkeypatch.delenv(TEXT_ENV, raising=False)
    lines = []
    assert prepare.prepare("smoke", data_only=True, out=lines.append) == 1
    row = rows_of(lines)["images"]
    assert " FAIL " in row and "KDTUTOR_CIFAR10=" in row and "c10.tar.gz" in row


def test_prepare_smoke_fails_when_kdtutor_text_is_nul_bytes(tmp_path, monkeypatch):
    (tmp_path / "t.txt").write_bytes(bytes(5000))
    monkeypatch.setenv(TEXT_ENV, str(tmp_path / "t.txt"))
    monkeypatch.delenv("KDTUTOR_CIFAR10", raising=False)
    lines = []
    assert prepare.prepare("smoke", data_only=True, needs=["text"], out=lines.append) == 1
    row = rows_of(lines)["text"]
    assert " FAIL " in row and f"{TEXT_ENV}={tmp_path / 't.txt'} is not a readable text" in row


def test_a_text_too_short_for_the_profiles_windows_fails_prepare_and_says_how_long(tmp_path, monkeypatch):
    (tmp_path / "t.txt").write_text("To be, or not to be: that is the question.\n" * 50)  # 2,150 characters
    monkeypatch.setenv(TEXT_ENV, str(tmp_path / "t.txt"))
    row = prepare.text_row(get_profile("gpu"))  # windows of 257 characters: validation would hold 107
    assert row[1] == "FAIL" and f"{TEXT_ENV}=" in row[2]
    assert "validation part has 107 characters" in row[2] and "at least 5,142 characters" in row[2]
    assert prepare.text_row(get_profile("smoke"))[1] == "PASS"  # windows of 33 fit


@pytest.mark.parametrize("content", ["", "0123456789"])
def test_an_empty_or_tiny_text_names_kdtutor_text(tmp_path, monkeypatch, content):
    (tmp_path / "t.txt").write_text(content)
    monkeypatch.setenv(TEXT_ENV, str(tmp_path / "t.txt"))
    with pytest.raises(ValueError, match=rf"{TEXT_ENV}=.*t\.txt.*(empty|too short)"):
        load_text(download=False, verbose=False)


# --------------------------------------------------------------------------- checkpoint advice
def test_a_foreign_file_is_never_called_one_to_delete(tmp_path):
    (tmp_path / "notes.txt").write_text("my notes")
    with pytest.raises(CorruptFileError) as e:
        load_checked(tmp_path / "notes.txt", kind="checkpoint")
    assert "delete" not in str(e.value) and "kdtutor did not write it" in str(e.value)
    damaged = storage.save_checked({"a": 1}, tmp_path / "mine.pt", kind="checkpoint")
    damaged.write_bytes(damaged.read_bytes()[:-3])
    with pytest.raises(CorruptFileError, match=r"delete .*mine\.pt \(kdtutor wrote it\)"):
        load_checked(damaged, kind="checkpoint")


def test_train_teacher_refuses_to_resume_from_or_overwrite_a_foreign_out_file(tmp_path, no_data):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(SystemExit) as e:
        main(["train-teacher", "--profile", "smoke", "--out", str(notes), "--device", "cpu"])
    assert "not a kdtutor checkpoint" in str(e.value) and "delete" not in str(e.value)
    assert notes.read_text() == "my notes"


def test_distill_refuses_out_equal_to_its_teacher_before_loading_data(tmp_path, no_data):
    teacher = teacher_file(tmp_path / "t.pt")
    before = teacher.read_bytes()
    with pytest.raises(SystemExit, match=r"t\.pt is both the output and --teacher"):
        main(["distill", "--profile", "smoke", "--teacher", str(teacher), "--out", str(tmp_path / "." / "t.pt"),
              "--device", "cpu"])
    assert teacher.read_bytes() == before


def test_a_damaged_teacher_is_refused_without_advice_to_delete_it(tmp_path, no_data):
    teacher = teacher_file(tmp_path / "t.pt")
    teacher.write_bytes(teacher.read_bytes()[:-10])
    with pytest.raises(SystemExit) as e:
        main(["distill", "--profile", "smoke", "--teacher", str(teacher), "--device", "cpu"])
    assert "train the teacher again" in str(e.value) and "delete" not in str(e.value)
    (tmp_path / "x.pt").write_text("not a checkpoint")
    with pytest.raises(SystemExit, match="not a kdtutor checkpoint"):
        main(["distill", "--profile", "smoke", "--teacher", str(tmp_path / "x.pt"), "--device", "cpu"])


def test_a_missing_teacher_is_reported_before_loading_data(tmp_path, no_data):
    with pytest.raises(SystemExit, match=r"no teacher at .*nothing\.pt: train one first"):
        main(["distill", "--profile", "smoke", "--teacher", str(tmp_path / "nothing.pt"), "--device", "cpu"])


def test_a_teacher_without_dataset_metadata_gets_a_clear_error_not_a_key_error(tmp_path, no_data):
    from kdtutor.checkpoints import save_checkpoint

    path = save_checkpoint(tmp_path / "t.pt", build_model("cnn_tiny"),
                           {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32})
    with pytest.raises(SystemExit, match="does not record which data set it was trained on"):
        main(["distill", "--profile", "smoke", "--teacher", str(path), "--device", "cpu"])


# --------------------------------------------------------------------------- arguments before data
@pytest.mark.parametrize("device, message", [
    ("mps", "cpu or cuda only"), ("tpu", "not a device name PyTorch knows"), ("xla", "cpu or cuda only"),
    ("gpu0", "not a device name"),
])
def test_unsupported_devices_are_refused_before_the_data_load(device, message, no_data):
    with pytest.raises(SystemExit, match=message):
        main(["train-teacher", "--profile", "smoke", "--device", device])


def test_cuda_without_a_gpu_is_refused_before_the_data_load(no_data, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        main(["train-teacher", "--profile", "smoke", "--device", "cuda"])


@pytest.mark.parametrize("flag, value, message", [
    ("--T", "0", "T must be finite and > 0"), ("--T", "nan", "T must be finite"), ("--T", "-2", "> 0"),
    ("--alpha", "1.5", "must lie in \\[0, 1\\]"), ("--alpha", "-0.1", "must lie in"),
])
def test_invalid_temperature_or_alpha_is_refused_before_the_data_load(tmp_path, no_data, flag, value, message):
    teacher = teacher_file(tmp_path / "t.pt")
    with pytest.raises(SystemExit, match=rf"{flag} {value}(\.0)?: .*{message}"):
        main(["distill", "--profile", "smoke", "--teacher", str(teacher), flag, value, "--device", "cpu"])


def test_out_that_is_a_folder_or_the_data_set_is_refused(tmp_path, no_data, monkeypatch):
    with pytest.raises(SystemExit, match="is a folder: give a file path"):
        main(["train-teacher", "--profile", "smoke", "--out", str(tmp_path), "--device", "cpu"])
    (tmp_path / "c10.tar.gz").write_bytes(b"images")
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "c10.tar.gz"))
    with pytest.raises(SystemExit, match=r"is the data set \$KDTUTOR_CIFAR10 points at"):
        main(["train-teacher", "--profile", "smoke", "--out", str(tmp_path / "c10.tar.gz"), "--device", "cpu"])
    assert (tmp_path / "c10.tar.gz").read_bytes() == b"images"


def test_teacher_logits_file_that_kdtutor_did_not_write_is_refused(tmp_path, no_data):
    teacher = teacher_file(tmp_path / "t.pt")
    (tmp_path / "logits.pt").write_text("mine")
    with pytest.raises(SystemExit, match="not a kdtutor teacher logits"):
        main(["distill", "--profile", "smoke", "--teacher", str(teacher), "--teacher-logits",
              str(tmp_path / "logits.pt"), "--device", "cpu"])
    with pytest.raises(SystemExit, match="both the output and --teacher-logits"):
        main(["distill", "--profile", "smoke", "--teacher", str(teacher), "--teacher-logits",
              str(tmp_path / "l2.pt"), "--out", str(tmp_path / "l2.pt"), "--device", "cpu"])
