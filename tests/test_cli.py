"""python -m kdtutor: the batch-run commands use the lessons' code and write checkpoints."""

import pytest

from kdtutor.__main__ import main
from kdtutor.images.train import load_checkpoint


def test_train_teacher_then_distill(tmp_path, capsys):
    teacher = tmp_path / "teacher.pt"
    assert main(["train-teacher", "--profile", "smoke", "--epochs", "1", "--arch", "cnn_tiny",
                 "--out", str(teacher), "--device", "cpu"]) == 0
    model, meta = load_checkpoint(teacher, arch="cnn_tiny")
    assert meta["profile"] == "smoke" and meta["epochs_done"] == 1 and "NOT CIFAR-10" in meta["dataset"]
    student = tmp_path / "student.pt"
    assert main(["distill", "--profile", "smoke", "--teacher", str(teacher), "--student", "cnn_tiny", "--T", "2",
                 "--alpha", "0.5", "--epochs", "1", "--out", str(student), "--device", "cpu"]) == 0
    _, smeta = load_checkpoint(student)
    assert (smeta["kind"], smeta["T"], smeta["alpha"]) == ("distilled", 2.0, 0.5)
    out = capsys.readouterr().out
    assert "test accuracy on stand-in (synthetic shapes, NOT CIFAR-10)" in out


def test_distill_refuses_a_teacher_from_other_data(tmp_path):
    from kdtutor.images.data import load_digits
    from kdtutor.images.recipes import digits_config
    from kdtutor.checkpoints import save_checkpoint
    from kdtutor.images.train import train_model

    r = train_model("mlp_small", load_digits(), digits_config(epochs=1), device="cpu", progress=False)
    path = save_checkpoint(tmp_path / "digits.pt", r.model, r.meta)
    with pytest.raises(SystemExit, match="trained on 'digits"):
        main(["distill", "--profile", "smoke", "--teacher", str(path), "--epochs", "1", "--device", "cpu"])


@pytest.mark.parametrize("argv, env", [
    (["coursetools", "course", "--profile", "nonsense"], {}),
    (["kdtutor", "prepare", "--profile", "nonsense"], {}),
    (["kdtutor", "prepare"], {"KDTUTOR_PROFILE": "nonsense"}),
])
def test_an_unknown_profile_is_one_line_before_anything_runs(argv, env, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    environ = {**os.environ, "PYTHONPATH": str(root), "KDTUTOR_DATA": str(tmp_path), **env}
    done = subprocess.run([sys.executable, "-m", *argv], cwd=root, env=environ, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [f"python -m {argv[0]}: error: unknown profile 'nonsense' (from KDTUTOR_PROFILE "
                                        "or the argument); choose one of: smoke, cpu, gpu"]
    assert not any(tmp_path.iterdir())  # nothing fetched or written
