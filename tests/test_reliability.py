"""Nothing stale, nothing silently replaced, nothing lost (issue: checkpoints, caches, CLI, files).

Each test here failed on the code before its fix.
"""

import os
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from kdtutor.__main__ import main
from kdtutor.fingerprint import weights_fingerprint
from kdtutor.images import distill, train
from kdtutor.images.distill import DistillLoss, TeacherLogits, compare_scratch_vs_kd, freeze, student_paths
from kdtutor.images.models import build_model
from kdtutor.images.recipes import student_config
from kdtutor.images.standin import make_standin
from kdtutor.images.train import LossNotFiniteError, fit, prepare_run
from kdtutor.storage import atomic_write_bytes, load_checked, move_aside, save_checked

TINY = make_standin(120, 40, 40, seed=0)
ROOT = Path(__file__).resolve().parent.parent


def teacher(seed):
    torch.manual_seed(seed)
    return freeze(build_model("cnn_tiny"))


def cfg(seed):
    return student_config(epochs=1, batch_size=40, seed=seed)


# --------------------------------------------------------------------------- 1. students and their teacher
def test_fingerprint_is_the_same_for_equal_weights_and_differs_for_any_change():
    a, b = teacher(0), teacher(1)
    assert weights_fingerprint(a) == weights_fingerprint(teacher(0))
    assert weights_fingerprint(a) != weights_fingerprint(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6  # one weight, a hair apart
    assert weights_fingerprint(b) != weights_fingerprint(teacher(1))


def test_a_student_distilled_from_another_teacher_is_retrained_not_reused(tmp_path, capsys):
    first = compare_scratch_vs_kd(teacher(0), "cnn_tiny", TINY, cfg, [0], checkpoint_dir=tmp_path, progress=False)
    kd_path = student_paths(tmp_path, "cnn_tiny", 0, 4.0, 0.9)[1]
    assert load_checked(kd_path, "checkpoint")["meta"]["teacher_sha256"] == weights_fingerprint(teacher(0))
    capsys.readouterr()
    again = compare_scratch_vs_kd(teacher(1), "cnn_tiny", TINY, cfg, [0], checkpoint_dir=tmp_path, progress=False)
    out = capsys.readouterr().out
    assert "moved it to" in out and kd_path.with_name(kd_path.name + ".old").exists()
    assert load_checked(kd_path, "checkpoint")["meta"]["teacher_sha256"] == weights_fingerprint(teacher(1))
    new, old = again.runs["distilled", 0].model.state_dict(), first.runs["distilled", 0].model.state_dict()
    assert any(not torch.equal(new[k], old[k]) for k in new)
    # the scratch student does not depend on the teacher: it is loaded, not retrained
    assert "already complete" in out


# --------------------------------------------------------------------------- 7. student checkpoints recovered
@pytest.mark.parametrize("damage", ["truncate", "other data"])
def test_an_unusable_student_checkpoint_is_moved_aside_and_retrained(tmp_path, damage, capsys):
    compare_scratch_vs_kd(teacher(0), "cnn_tiny", TINY, cfg, [0], checkpoint_dir=tmp_path, progress=False)
    scratch_path = student_paths(tmp_path, "cnn_tiny", 0, 4.0, 0.9)[0]
    original = scratch_path.read_bytes()
    data = TINY
    if damage == "truncate":
        scratch_path.write_bytes(original[:-200])
    else:
        data = make_standin(120, 40, 40, seed=5)  # e.g. the stand-in first, real images later
    result = compare_scratch_vs_kd(teacher(0), "cnn_tiny", data, cfg, [0], checkpoint_dir=tmp_path, progress=False)
    assert "moved it to" in capsys.readouterr().out
    kept = scratch_path.with_name(scratch_path.name + ".old")
    assert kept.exists() and (kept.read_bytes() == original or damage == "truncate")
    assert ("scratch", 0) in result.runs


def test_move_aside_never_overwrites_an_earlier_file(tmp_path):
    p = tmp_path / "x.pt"
    for content in (b"one", b"two", b"three"):
        p.write_bytes(content)
        move_aside(p)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["x.pt.old", "x.pt.old1", "x.pt.old2"]
    assert (tmp_path / "x.pt.old").read_bytes() == b"one" and (tmp_path / "x.pt.old2").read_bytes() == b"three"


# --------------------------------------------------------------------------- 3, 4, 9: the command line
@pytest.mark.slow
def test_train_teacher_and_the_lessons_use_one_default_path(tmp_path, monkeypatch):
    from kdtutor.profiles import get_profile

    monkeypatch.setattr(train, "CHECKPOINT_DIR", tmp_path)
    assert main(["train-teacher", "--profile", "smoke", "--epochs", "1", "--device", "cpu"]) == 0
    assert train.teacher_path(get_profile("smoke")).exists()
    assert [p.name for p in tmp_path.glob("*.pt")] == [train.teacher_path(get_profile("smoke")).name]
    # distill finds it without --teacher
    assert main(["distill", "--profile", "smoke", "--epochs", "1", "--device", "cpu"]) == 0


@pytest.mark.parametrize("epochs", ["0", "-2", "two"])
def test_epochs_must_be_a_positive_whole_number(epochs, capsys):
    with pytest.raises(SystemExit):
        main(["train-teacher", "--profile", "smoke", "--epochs", epochs])
    assert "--epochs" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown when there is no GPU")
def test_device_cuda_without_a_gpu_says_so():
    with pytest.raises(SystemExit, match="sees no CUDA GPU"):
        main(["train-teacher", "--profile", "smoke", "--epochs", "1", "--device", "cuda"])


def test_a_nan_teacher_is_named_as_the_cause():
    bad = teacher(0)
    with torch.no_grad():
        bad[-1].weight.fill_(float("nan"))
    model, loader, val, _ = prepare_run("cnn_tiny", TINY, cfg(0), device="cpu")
    loss = DistillLoss(TeacherLogits(bad, loader), T=4, alpha=0.9)
    with pytest.raises(LossNotFiniteError, match="teacher's logits are not finite"):
        fit(model, loader, val, cfg(0), loss_fn=loss, progress=False)


def test_wrong_md5_message_says_to_delete_and_what_to_check(tmp_path):
    from kdtutor.images.cifar10 import verify_archive
    from kdtutor.storage import CorruptFileError

    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"<html>proxy login</html>")
    with pytest.raises(CorruptFileError, match="delete it.*HTML page"):
        verify_archive(tmp_path / "cifar-10-python.tar.gz")


# --------------------------------------------------------------------------- 2. a read-only data folder
def test_valid_cifar_in_a_read_only_folder_is_used_not_replaced_by_the_standin(tmp_path, monkeypatch, recwarn):
    from kdtutor.images import cifar10
    from kdtutor.images.data import load_dataset
    from kdtutor.profiles import get_profile
    from test_data import md5, write_fake_cifar

    archive = tmp_path / cifar10.CIFAR10_ARCHIVE
    write_fake_cifar(archive, n_per_batch=20)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5(archive))
    monkeypatch.setattr(cifar10.load_cifar10, "__defaults__", (cifar10.DATA_DIR, True, md5(archive)))

    def read_only(*a, **k):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(cifar10, "save_checked", read_only)
    monkeypatch.delenv("KDTUTOR_CIFAR10", raising=False)
    ds = load_dataset(get_profile("cpu").with_(n_train=50, n_val=5, n_test=10), root=tmp_path)
    assert ds.name == "CIFAR-10" and not ds.is_standin
    assert any("could not write the CIFAR-10 cache" in str(w.message) for w in recwarn)


# --------------------------------------------------------------------------- 6. the user's umask
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_are_written_with_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        p = atomic_write_bytes(tmp_path / "f.bin", b"x")
        q = save_checked({"a": 1}, tmp_path / "g.pt", kind="test")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == mode and stat.S_IMODE(q.stat().st_mode) == mode


# --------------------------------------------------------------------------- 8. bounded memory
def test_all_teacher_logits_runs_in_batches_and_matches_one_pass():
    t = teacher(0)
    loader = train.make_loaders(TINY, 40, "cpu", augment=False)[0]
    sizes = []
    hook = t.register_forward_hook(lambda m, i, o: sizes.append(len(i[0])))
    out = distill.all_teacher_logits(t, loader, batch_size=50)
    hook.remove()
    assert sizes == [50, 50, 20]
    want = distill.teacher_forward(t, loader.clean_images(torch.arange(120)))
    torch.testing.assert_close(out, want)


# --------------------------------------------------------------------------- 13. the sweep shares logits
def test_sweep_runs_the_teacher_once_per_view_not_once_per_run():
    t = teacher(0)
    calls = []
    t.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    epochs = 2
    s = distill.sweep(t, "cnn_tiny", TINY, student_config(epochs=epochs, batch_size=40), [1.0, 4.0], [0.5, 0.9],
                      device="cpu", progress=False)
    assert len(s.runs) == 4
    # per epoch view: one pass over the 120 training images (batches of ≤ 1024), plus one
    # spot check of 8 images; four runs that each ran the teacher would need 4× as many images
    assert sum(calls) == epochs * (120 + 8), calls


# --------------------------------------------------------------------------- 10. make lab as root
def test_make_lab_starts_jupyterlab_through_python_m_kdtutor_lab():
    """make lab hands over to ``python -m kdtutor lab``, which adds --allow-root exactly when run as
    root (tests/test_install.py checks that both ways), so make and no-make setups behave alike."""
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert any(line.endswith("-m kdtutor lab") for line in out.splitlines()), out  # make[1] lines may follow
