"""Checkpoints are keyed by the code that made them (issue 36.6a): a teacher trained by other code (a
changed activation, an edited training module) is moved aside and retrained, never loaded as current;
an edit to code the run does not use (course tooling) keeps it."""

import dataclasses

import pytest
import torch

from kdtutor import fingerprint
from kdtutor.checkpoints import CheckpointMismatch
from kdtutor.images import train
from kdtutor.images.recipes import student_config
from kdtutor.images.standin import make_standin

TINY = make_standin(80, 40, 40, seed=0)


def _profile():
    from kdtutor.profiles import get_profile

    return get_profile("smoke").with_(teacher="cnn_tiny", teacher_epochs=1, batch_size=40)


def _edited(monkeypatch, module: str):
    """As if ``module``'s file had been edited (a comment added) before this process read it."""
    real = fingerprint._source
    monkeypatch.setattr(fingerprint, "_source", lambda m: real(m) + (b"\n# edited\n" if m == module else b""))


def _same(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_a_teacher_from_a_changed_activation_is_retrained_not_loaded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train, "CHECKPOINT_DIR", tmp_path)
    first = train.get_teacher(_profile(), TINY, device="cpu", progress=False)
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr(torch.nn, "ReLU", torch.nn.GELU)  # the learner's edit: another activation
        changed = train.get_teacher(_profile(), TINY, device="cpu", progress=False)
    out = capsys.readouterr().out
    assert "other code" in out and "moved it to" in out and "already complete" not in out
    assert any(isinstance(mod, torch.nn.GELU) for mod in changed.model.modules())
    assert not _same(first.model, changed.model)
    assert train.teacher_path(_profile()).with_suffix(".pt.old").exists()  # the old teacher is kept


@pytest.mark.parametrize("module, reused", [("kdtutor.images.models", False), ("kdtutor.images.train", False),
                                            ("kdtutor.kd.losses", False), ("kdtutor.machine", True)])
def test_an_edit_to_the_code_a_run_uses_refuses_its_checkpoint(module, reused, tmp_path, monkeypatch):
    cfg = dataclasses.replace(student_config(epochs=1, batch_size=40))
    ckpt = tmp_path / "run.pt"
    train.train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)
    _edited(monkeypatch, module)
    if reused:
        train.train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)
    else:
        with pytest.raises(CheckpointMismatch, match="other code.*move it aside"):
            train.train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)


def test_code_fingerprint_follows_imports_not_the_whole_package(monkeypatch):
    deps = fingerprint.dependencies("kdtutor.images.train")
    assert "kdtutor.images.models" in deps and "kdtutor.kd.losses" in deps and "kdtutor" in deps
    assert not any(d == "kdtutor.machine" or d == "kdtutor.__main__" for d in deps)
    before = {m: fingerprint.code_fingerprint(m) for m in ("kdtutor.images.train", "kdtutor.kd.losses")}
    _edited(monkeypatch, "kdtutor.images.models")
    assert fingerprint.code_fingerprint("kdtutor.images.train") != before["kdtutor.images.train"]
    assert fingerprint.code_fingerprint("kdtutor.kd.losses") == before["kdtutor.kd.losses"]
    with pytest.raises(ValueError, match="not a module of kdtutor"):
        fingerprint.dependencies("kdtutor.nothing")


def test_a_checkpoint_loaded_by_name_is_refused_when_the_model_code_changed(tmp_path, monkeypatch, capsys):
    from kdtutor.__main__ import main
    from kdtutor.checkpoints import save_checkpoint
    from kdtutor.images.train import load_checkpoint
    from kdtutor.images.models import build_model
    from kdtutor.images.standin import STANDIN_NAME

    meta = {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32, "dataset": STANDIN_NAME}
    path = save_checkpoint(tmp_path / "t.pt", build_model("cnn_tiny"), meta)
    load_checkpoint(path)  # this code: loads
    with monkeypatch.context() as m:
        m.setattr(torch.nn, "ReLU", torch.nn.GELU)  # a changed activation
        with pytest.raises(CheckpointMismatch, match="made by other code"):
            load_checkpoint(path)
    _edited(monkeypatch, "kdtutor.images.models")  # an edited models.py (say, another pooling)
    with pytest.raises(CheckpointMismatch, match="made by other code"):
        load_checkpoint(path)
    with pytest.raises(SystemExit) as e:  # the command line refuses it before loading any data
        main(["distill", "--teacher", str(path), "--profile", "smoke", "--device", "cpu"])
    assert "made by other code" in str(e.value) and "train the teacher again" in str(e.value)
    assert path.exists()  # an input: never moved nor deleted
