"""Your own models: a constructor ``seed → nn.Module`` or an ``nn.Module`` works wherever a model name does."""

import dataclasses

import pytest
import torch
from torch import nn

from kdtutor.images.train import load_checkpoint
from kdtutor.fingerprint import weights_fingerprint
from kdtutor.images.distill import (
    compare_scratch_vs_kd,
    distill_student,
    student_paths,
    sweep,
)
from kdtutor.images.models import build_model, check_output, make_model, model_label
from kdtutor.images.recipes import config_for, student_config
from kdtutor.images.standin import make_standin
from kdtutor.images.train import train_model

TINY = make_standin(80, 20, 20, seed=0)


def tiny_cfg(seed=0, **kw):
    return dataclasses.replace(student_config(epochs=1, batch_size=20, seed=seed), **kw)


def my_student(seed: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(8, 10))


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_build_takes_a_name_a_constructor_or_a_module():
    torch.manual_seed(5)
    by_name = build_model("cnn_tiny")
    assert same_weights(make_model("cnn_tiny", seed=5), by_name)  # a name: as before, seeded
    assert same_weights(make_model(my_student, seed=1), make_model(my_student, seed=1))  # same seed, same start
    assert not same_weights(make_model(my_student, seed=1), make_model(my_student, seed=2))
    seen = []
    make_model(lambda seed: seen.append(seed) or my_student(seed), seed=7)
    assert seen == [7]
    module = my_student(0)
    copy = make_model(module, seed=3)
    assert copy is not module and same_weights(copy, module)
    with pytest.raises(ValueError, match="returned int, not an nn.Module"):
        make_model(lambda seed: 3)
    with pytest.raises(ValueError, match="a function seed → nn.Module"):
        make_model(3.5)
    with pytest.raises(ValueError, match="unknown model"):
        make_model("resnet9000")


def test_model_label_names_runs_and_files():
    assert model_label("cnn_tiny") == "cnn_tiny"
    assert model_label(my_student) == "my_student"
    assert model_label(my_student(0)) == "Sequential"
    assert model_label(lambda seed: None) == "lambda"
    assert student_paths("d", my_student, 1, 4, 0.9)[0].name == "my_student_scratch_seed1.pt"


def test_check_output_names_wrong_classes_and_wrong_input_size():
    x = torch.randn(4, 3, 16, 16)
    check_output(my_student(0), x, 10)
    with pytest.raises(ValueError, match=r"gives \(4, 10\) on a batch of 4 images, but the data have 5 classes"):
        check_output(my_student(0), x, 5)
    flat = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(ValueError, match=r"cannot run on this data's images \(3, 16, 16\)"):
        check_output(flat, x, 10, "the teacher")
    m = my_student(0).train()
    check_output(m, x, 10)
    assert m.training  # back to its mode


def test_a_student_built_for_other_data_is_refused_before_training():
    with pytest.raises(ValueError, match="the model five_classes gives"):
        def five_classes(seed):
            return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 5))
        train_model(five_classes, TINY, tiny_cfg(), device="cpu", progress=False)


def test_distill_a_constructor_from_any_module_teacher_and_reload_it(tmp_path):
    teacher = train_model("cnn_tiny", TINY, tiny_cfg(), device="cpu", progress=False).model
    teacher_as_module = nn.Sequential(*teacher.children())  # any nn.Module, not a kdtutor class
    r = distill_student(teacher_as_module, my_student, TINY, tiny_cfg(), T=2.0, alpha=0.5, device="cpu",
                        checkpoint=tmp_path / "s.pt", progress=False)
    assert r.meta["arch"] == "my_student" and r.meta["teacher_sha256"] == weights_fingerprint(teacher)
    assert r.meta["init_sha256"] == weights_fingerprint(make_model(my_student, 0))
    again, meta = load_checkpoint(tmp_path / "s.pt", arch=my_student)
    assert same_weights(again, r.model) and meta["T"] == 2.0
    with pytest.raises(ValueError, match="holds a 'my_student' model, not 'cnn_tiny'"):
        load_checkpoint(tmp_path / "s.pt", arch="cnn_tiny")
    assert config_for(my_student, 3, 20) == student_config(3, 20)


def test_paired_comparison_and_sweep_take_a_constructor(tmp_path):
    teacher = train_model("cnn_tiny", TINY, tiny_cfg(), device="cpu", progress=False).model
    c = compare_scratch_vs_kd(teacher, my_student, TINY, tiny_cfg, seeds=[0, 1], device="cpu", progress=False,
                              checkpoint_dir=tmp_path)
    # both runs of a seed start from my_student(seed)'s weights: alpha=0 would make them equal
    assert len(c.scratch) == len(c.distilled) == 2
    assert (tmp_path / "my_student_scratch_seed1.pt").exists()
    zero = compare_scratch_vs_kd(teacher, my_student, TINY, tiny_cfg, seeds=[3], alpha=0.0, device="cpu",
                                 progress=False)
    assert same_weights(zero.runs["scratch", 3].model, zero.runs["distilled", 3].model)
    s = sweep(teacher, my_student(0), TINY, tiny_cfg(), [2.0], [0.5, 0.9], device="cpu", progress=False)
    assert len(s.val_acc[0]) == 2 and s.runs[2.0, 0.5].meta["arch"] == "Sequential"


# --------------------------------------------------------------------------- your teacher
def small_teacher(seed: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(16, 10))


def test_load_teacher_from_a_state_dict_and_freeze_it(tmp_path):
    from kdtutor.images.distill import load_teacher

    trained = train_model(small_teacher, TINY, tiny_cfg(), device="cpu", progress=False).model
    torch.save(trained.state_dict(), tmp_path / "t.pth")
    teacher = load_teacher(small_teacher, tmp_path / "t.pth", TINY, device="cpu")
    assert same_weights(teacher, trained) and not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    torch.save({"state_dict": trained.state_dict(), "epoch": 3}, tmp_path / "wrapped.pth")
    assert same_weights(load_teacher(small_teacher, tmp_path / "wrapped.pth", TINY, device="cpu"), trained)
    with pytest.raises(FileNotFoundError, match="no teacher weights"):
        load_teacher(small_teacher, tmp_path / "missing.pth", TINY)


def test_load_teacher_names_a_class_count_or_input_size_that_does_not_fit(tmp_path):
    from kdtutor.images.distill import load_teacher

    def three_classes(seed):
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 3))

    torch.save(three_classes(0).state_dict(), tmp_path / "three.pth")
    with pytest.raises(ValueError, match=r"the teacher three_classes gives \(8, 3\) .* the data have 10 classes"):
        load_teacher(three_classes, tmp_path / "three.pth", TINY)  # the weights fit the module, not the data
    with pytest.raises(ValueError, match=r"(?s)do not fit small_teacher built for 10 classes.*size mismatch"):
        load_teacher(small_teacher, tmp_path / "three.pth", TINY)  # the weights do not fit the module

    def expects_64(seed):
        return nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 10))

    torch.save(expects_64(0).state_dict(), tmp_path / "big.pth")
    with pytest.raises(ValueError, match=r"the teacher expects_64 cannot run on this data's images \(3, 32, 32\)"):
        load_teacher(expects_64, tmp_path / "big.pth", TINY)
    torch.save([1, 2], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="holds a list, not a state_dict"):
        load_teacher(small_teacher, tmp_path / "list.pth", TINY)
    with pytest.raises(ValueError, match="unknown architecture 'resnet_nine_thousand'"):
        load_teacher("resnet_nine_thousand", tmp_path / "big.pth", TINY)


def test_load_teacher_takes_a_torchvision_architecture_with_local_weights(tmp_path):
    import torchvision

    from kdtutor.images.distill import load_teacher

    net = torchvision.models.get_model("resnet18", weights=None, num_classes=10)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    teacher = load_teacher("resnet18", tmp_path / "r18.pth", TINY, device="cpu")
    assert same_weights(teacher, net)
    imagenet = torchvision.models.get_model("resnet18", weights=None)  # 1000 classes
    torch.save(imagenet.state_dict(), tmp_path / "in1k.pth")
    with pytest.raises(ValueError, match=r"(?s)fc.weight.*\[1000, 512\]"):
        load_teacher("resnet18", tmp_path / "in1k.pth", TINY)
