"""Take it to work (issue 32): your own teacher and student (plain nn.Sequential), your own folder of
images of mixed sizes, through the public API and the command line, with the paired comparison and
the report card."""

import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from kdtutor.__main__ import main
from kdtutor.images.train import load_checkpoint
from kdtutor.images.distill import compare_scratch_vs_kd, distill_student, load_teacher
from kdtutor.images.evaluate import report_card, report_table
from kdtutor.images.image_folder import load_image_folder
from kdtutor.images.recipes import student_config
from kdtutor.images.train import eval_loader, train_model

CLASSES = ("red", "green", "blue")
MODELS_PY = textwrap.dedent('''
    from torch import nn

    def teacher(seed):
        return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(16, 3))

    def student(seed):
        return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(4, 3))
''')


def make_photos(root, seed=0):
    """root/{train,test}/<colour>/<i>.png: 10 + 3 noisy images per class, each of its own size (13–40 px)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", 10), ("test", 3)):
        for c, cls in enumerate(CLASSES):
            for i in range(n):
                h, w = rng.integers(13, 41, size=2)
                rgb = rng.integers(0, 120, size=(h, w, 3))
                rgb[..., c] += 120  # the class is the dominant colour
                (root / split / cls).mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb.astype(np.uint8)).save(root / split / cls / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("own")
    make_photos(tmp / "photos")
    (tmp / "ownmodels.py").write_text(MODELS_PY)
    namespace = {}
    exec(MODELS_PY, namespace)
    return tmp, namespace["teacher"], namespace["student"]


def cfg(seed=0):
    return student_config(epochs=1, batch_size=8, seed=seed)


def test_public_api_distils_compares_and_reports_on_a_mixed_size_folder(setup):
    tmp, teacher_fn, student_fn = setup
    data = load_image_folder(tmp / "photos", size=16, crop=True, cache_dir=tmp / "cache", progress=False)
    assert data.image_shape == (3, 16, 16) and data.name == "photos (image folder, 16×16 centre crops)"
    trained = train_model(teacher_fn, data, cfg(), device="cpu", progress=False).model  # "your" pretrained teacher
    torch.save(trained.state_dict(), tmp / "teacher.pth")

    teacher = load_teacher(teacher_fn, tmp / "teacher.pth", data, device="cpu")
    kd = distill_student(teacher, student_fn, data, cfg(), T=4.0, alpha=0.9, device="cpu", progress=False)
    assert isinstance(kd.model, nn.Sequential) and kd.meta["arch"] == "student" and len(kd.history.epochs) == 1
    comparison = compare_scratch_vs_kd(teacher, student_fn, data, cfg, seeds=[0, 1], device="cpu", progress=False)
    assert len(comparison.scratch) == len(comparison.distilled) == 2
    assert "mean paired difference" in comparison.verdict()  # the one verdict rule, whatever the outcome
    # the distilled run of seed 0 is the one distill_student made: same start, same order, same loss
    assert torch.equal(comparison.runs["distilled", 0].model[0].weight, kd.model[0].weight)

    card = report_card({"teacher": teacher, "scratch": comparison.runs["scratch", 0].model, "distilled": kd.model},
                       eval_loader(data, "test", "cpu"), "teacher", data.name, batch_sizes=(1,), warmup=0, repeats=1)
    assert card["teacher"].agreement == 1.0 and card["distilled"].params < card["teacher"].params
    assert card["distilled"].n == 9 and 0 <= card["distilled"].ece <= 1
    assert "photos (image folder, 16×16 centre crops)" in report_table(card)


@pytest.mark.parametrize("form", ["module", "file"])
def test_command_line_distils_your_modules_on_your_folder(setup, form, monkeypatch, capsys):
    tmp, teacher_fn, student_fn = setup
    monkeypatch.syspath_prepend(str(tmp))
    where = "ownmodels" if form == "module" else str(tmp / "ownmodels.py")
    data = load_image_folder(tmp / "photos", size=16, crop=True, cache_dir=tmp / "cache", progress=False)
    torch.save(train_model(teacher_fn, data, cfg(), device="cpu", progress=False).model.state_dict(),
               tmp / "cli_teacher.pth")
    out = tmp / f"student_{form}.pt"
    assert main(["distill", "--profile", "smoke", "--data", str(tmp / "photos"), "--size", "16", "--crop",
                 "--student", f"{where}:student", "--teacher-arch", f"{where}:teacher",
                 "--teacher", str(tmp / "cli_teacher.pth"), "--epochs", "1", "--batch-size", "8",
                 "--T", "2", "--alpha", "0.5", "--out", str(out), "--device", "cpu"]) == 0
    assert "test accuracy on photos (image folder, 16×16 centre crops)" in capsys.readouterr().out
    model, meta = load_checkpoint(out, arch=student_fn)
    assert (meta["kind"], meta["arch"], meta["T"], meta["dataset"]) == (
        "distilled", "student", 2.0, "photos (image folder, 16×16 centre crops)")
    assert isinstance(model, nn.Sequential) and meta["epochs_done"] == 1


def test_command_line_checks_your_folder_and_modules_before_anything_trains(setup, monkeypatch):
    tmp, teacher_fn, _ = setup
    monkeypatch.syspath_prepend(str(tmp))
    torch.save(teacher_fn(0).state_dict(), tmp / "untrained.pth")
    run = ["distill", "--profile", "smoke", "--data", str(tmp / "photos"), "--epochs", "1", "--device", "cpu"]
    ours = ["--teacher-arch", "ownmodels:teacher", "--teacher", str(tmp / "untrained.pth")]
    with pytest.raises(SystemExit, match=r"pass a size .*--size and --crop on the command line"):
        main(run + ours)
    with pytest.raises(SystemExit, match="no such file"):
        main(run + ["--size", "16", "--teacher-arch", "ownmodels:teacher", "--teacher", str(tmp / "missing.pth")])
    with pytest.raises(SystemExit, match="cannot import it"):
        main(run + ["--size", "16", "--teacher-arch", "ownmodels:nothing_here", "--teacher",
                    str(tmp / "untrained.pth")])
    with pytest.raises(SystemExit, match="cannot import it"):
        main(run + ["--size", "16", "--student", "no_such_package.models:student"] + ours)
    with pytest.raises(SystemExit, match="--student resnet18: not a kdtutor model"):
        main(run + ["--size", "16", "--student", "resnet18"] + ours)
    with pytest.raises(SystemExit, match="--crop needs --size"):
        main(run + ["--crop"] + ours)
    with pytest.raises(SystemExit, match="--size and --crop apply to --data"):
        main(["distill", "--profile", "smoke", "--size", "16", "--device", "cpu"])
    with pytest.raises(SystemExit, match="pass --teacher FILE as well"):
        main(run)
    torch.save(nn.Linear(2, 2).state_dict(), tmp / "wrong.pth")
    with pytest.raises(SystemExit, match=r"(?s)--teacher-arch ownmodels:teacher\): the weights .* do not fit"):
        main(run + ["--size", "16", "--teacher-arch", "ownmodels:teacher", "--teacher", str(tmp / "wrong.pth")])
    (tmp / "five.py").write_text("from torch import nn\n\ndef student(seed):\n    return nn.Sequential("
                                 "nn.Flatten(), nn.Linear(3 * 16 * 16, 5))\n")
    with pytest.raises(SystemExit, match=r"--student five:student gives \(8, 5\) .* the data have 3 classes"):
        main(run + ["--size", "16", "--student", "five:student"] + ours)
