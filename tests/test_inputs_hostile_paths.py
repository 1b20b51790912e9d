"""Paths and values read strictly (issue 36.7): KDTUTOR_DATA empty, padded with spaces, with ~, or a file;
a negative seed; the advice after another run's checkpoint; a folder that cannot be written; the temporary
file of a writer killed mid-write."""

import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch

from kdtutor import storage
from kdtutor.__main__ import main
from kdtutor.checkpoints import save_checkpoint
from kdtutor.images.models import build_model
from kdtutor.images.standin import make_standin
from kdtutor.storage import folder_setting

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- KDTUTOR_DATA
def test_an_empty_data_setting_is_the_default_not_the_current_folder(tmp_path):
    assert folder_setting("KDTUTOR_DATA", tmp_path / "default", {"KDTUTOR_DATA": ""}) == tmp_path / "default"
    assert folder_setting("KDTUTOR_DATA", tmp_path / "default", {}) == tmp_path / "default"


def test_a_data_setting_with_spaces_around_is_refused_by_name():
    with pytest.raises(ValueError, match=r"KDTUTOR_DATA=' /x ' starts or ends with spaces"):
        folder_setting("KDTUTOR_DATA", Path("/d"), {"KDTUTOR_DATA": " /x "})


def test_tilde_is_the_home_folder_and_a_relative_path_is_made_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert folder_setting("KDTUTOR_DATA", Path("/d"), {"KDTUTOR_DATA": "~/kd-data"}) == tmp_path / "kd-data"
    monkeypatch.chdir(tmp_path)
    assert folder_setting("KDTUTOR_DATA", Path("/d"), {"KDTUTOR_DATA": "rel"}) == tmp_path / "rel"


def _import_storage(value):
    env = {**os.environ, "KDTUTOR_DATA": value, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from kdtutor.storage import DATA_DIR; print(DATA_DIR)"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_a_file_as_kdtutor_data_fails_at_import_before_any_work(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    done = _import_storage(str(tmp_path / "notes.txt"))
    assert done.returncode != 0 and "is a file, not a folder" in done.stderr and "KDTUTOR_DATA" in done.stderr
    assert (tmp_path / "notes.txt").read_text() == "x"
    assert _import_storage("").stdout.strip() == str(ROOT / "data")


# --------------------------------------------------------------------------- the command line
@pytest.fixture
def no_data(monkeypatch):
    import kdtutor.images.data

    def refuse(*a, **k):
        raise AssertionError("the data were loaded before the arguments were checked")

    monkeypatch.setattr(kdtutor.images.data, "load_dataset", refuse)


@pytest.mark.parametrize("seed", ["-1", str(2**32), "1.5"])
def test_a_seed_numpy_cannot_take_is_refused_before_loading_data(seed, no_data, capsys):
    with pytest.raises(SystemExit):
        main(["train-teacher", "--profile", "smoke", "--seed", seed, "--device", "cpu"])
    err = capsys.readouterr().err
    assert "--seed" in err and ("from 0 to" in err or "not a whole number" in err)


def test_the_cli_moves_another_runs_checkpoint_aside_like_the_lessons(tmp_path, capsys):
    out = tmp_path / "t.pt"
    meta = {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32}
    save_checkpoint(out, build_model("cnn_tiny"), meta, run={"meta": {}, "config": {}, "code": "x"})
    before = out.read_bytes()
    main(["train-teacher", "--profile", "smoke", "--arch", "cnn_tiny", "--epochs", "1", "--out", str(out),
          "--device", "cpu"])
    printed = capsys.readouterr().out
    assert "moved it to" in printed and not re.search(r"delete (it|the|\S*t\.pt)", printed)
    assert (tmp_path / "t.pt.old").read_bytes() == before and out.exists()


# --------------------------------------------------------------------------- a folder that cannot be written
def _unwritable_folder(tmp_path) -> Path:
    (tmp_path / "a_file").write_text("x")
    return tmp_path / "a_file" / "sub"  # nothing can be created under a file (even by root)


def test_unwritable_says_why(tmp_path):
    assert storage.unwritable(tmp_path) is None
    assert storage.unwritable(_unwritable_folder(tmp_path))


def test_a_cache_in_an_unwritable_folder_warns_before_the_work_and_still_returns_the_result(tmp_path):
    order = []

    def make():
        order.append("made")
        return {"value": 3}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = _unwritable_folder(tmp_path)
        saved = storage.kept(folder / "r.pt", "evaluation", {"x": 1},
                             lambda: order.append(len(caught)) or make())
    assert saved["value"] == 3 and order == [1, "made"]  # the warning came first
    assert "cannot write in" in str(caught[0].message) and "computed but not kept" in str(caught[0].message)


def test_training_into_an_unwritable_folder_is_refused_before_the_first_step(tmp_path, monkeypatch):
    from kdtutor.images import train
    from kdtutor.images.recipes import student_config

    data = make_standin(80, 40, 40, seed=0)
    steps = []
    real = train.train_step
    monkeypatch.setattr(train, "train_step", lambda *a, **k: steps.append(1) or real(*a, **k))
    with pytest.raises(PermissionError, match="cannot write the checkpoint"):
        train.train_model("cnn_tiny", data, student_config(epochs=1, batch_size=40),
                          checkpoint=_unwritable_folder(tmp_path) / "c.pt", device="cpu", progress=False)
    assert steps == []
    done = tmp_path / "done.pt"  # a finished checkpoint still loads from a folder that became read-only
    first = train.train_model("cnn_tiny", data, student_config(epochs=1, batch_size=40), checkpoint=done,
                              device="cpu", progress=False)
    monkeypatch.setattr("kdtutor.checkpoints.unwritable", lambda folder: "Read-only file system")
    again = train.train_model("cnn_tiny", data, student_config(epochs=1, batch_size=40), checkpoint=done,
                              device="cpu", progress=False)
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))


def test_the_image_cache_warns_before_decoding(tmp_path, monkeypatch):
    from test_image_folder import make_folder

    from kdtutor.images import image_folder

    source = tmp_path / "imgs"
    make_folder(source)
    seen = []
    real = image_folder.read_image_folder
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        monkeypatch.setattr(image_folder, "read_image_folder", lambda *a, **k: seen.append(len(caught)) or real(*a, **k))
        ds = image_folder.load_image_folder(source, cache_dir=_unwritable_folder(tmp_path), progress=False)
    assert seen == [1] and "cannot write in" in str(caught[0].message) and len(ds.train) > 0


# --------------------------------------------------------------------------- a writer killed mid-write
def test_the_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "cache.pt"
    code = ("import os, sys, time; from kdtutor import storage\n"
            "os.fsync = lambda fd: (print('writing', flush=True), time.sleep(600))\n"
            f"storage.atomic_write_bytes({str(target)!r}, b'x' * 1_000_000)")
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert writer.stdout.readline().strip() == "writing"
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    (left,) = tmp_path.glob(".cache.pt.*.tmp")  # what the kill leaves
    live = tmp_path / f".cache.pt.{storage._host()}-{os.getpid()}.abcdefgh.tmp"  # a writer still at work: kept
    live.write_bytes(b"y")
    old = tmp_path / ".other.pt.other_host-1.abcdefgh.tmp"  # another machine's, two days old: abandoned
    old.write_bytes(b"z")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    mine = tmp_path / ".notes.tmp"  # not of kdtutor's naming: never touched
    mine.write_bytes(b"m")
    os.utime(mine, (time.time() - 2 * 86400,) * 2)
    storage.atomic_write_bytes(tmp_path / "another.pt", b"new")  # the next write into the folder cleans up
    assert not left.exists() and not old.exists() and live.exists() and mine.exists()
    storage.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new" and list(tmp_path.glob(".cache.pt.*.tmp")) == [live]
