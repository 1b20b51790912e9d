"""kdtutor.images.airbench and airbench94 parity: Lookahead/EMA, six-view TTA, identity init, the frozen
whitening bias, alternating flips, training on train+val — and proof that the cpu and smoke
recipes, which use none of them, train exactly as the plain loop they always were."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from kdtutor.images import recipes, train
from kdtutor.images.airbench import (Lookahead, dirac_init_, set_whiten_bias_trainable, tta_logits, tta_views,
                                     whiten_bias)
from kdtutor.images.distill import TeacherLogits, freeze
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.models import build_model
from kdtutor.images.predict import predict
from kdtutor.images.recipes import airbench_config, config_for, config_identity, lr_factor, make_optimizer
from kdtutor.images.standin import make_standin
from kdtutor.images.train import fit, prepare_run, train_model, with_val_in_train
from kdtutor.kd.losses import cross_entropy
from kdtutor.profiles import get_profile
from kdtutor.storage import load_checked

TINY = make_standin(120, 40, 40, seed=0)
MINI = make_standin(48, 16, 16, seed=0)  # airbench_small trains a few epochs on it in seconds
EXTRAS = ("lookahead", "dirac_init", "whiten_bias_epochs", "alternate_flip", "train_on_val")


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def small_airbench_cfg(epochs=4, **kw):
    """airbench_small with airbench's recipe, 3 steps per epoch on MINI; ``kw`` switches extras on."""
    return dataclasses.replace(airbench_config(epochs=epochs, batch_size=16, arch="airbench_small"), **kw)


# --------------------------------------------------------------------------- lookahead / EMA
def test_lookahead_weights_equal_the_closed_form_average():
    """A toy: the 'optimiser' writes w_s at step s; the average must be, in closed form,
    ema = w_{s0}·Π ρ_k + Σ_j (1 − ρ_j)·w_j·Π_{k>j} ρ_k over the update steps s0 < j ≤ …"""
    model = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
    per_epoch, total, every, start = 4, 24, 2, 2
    la = Lookahead(model, total, per_epoch, start_epoch=start, every=every)
    written = {s: 0.3 * s + (-1) ** s for s in range(1, total + 1)}
    bn = model[1]
    for s in range(1, total + 1):
        model[0].weight.data.fill_(written[s])
        bn.running_mean.fill_(2 * written[s])
        la.after_step(s)
        if s % per_epoch == 0:
            la.end_epoch()
    updates = [s for s in range(1, total + 1) if (s - 1) // per_epoch >= start and s % every == 0]
    assert updates[0] == 10  # first step of epoch 2 (0-based) that is a multiple of 2
    rho = {s: 0.95 ** every * (s / total) ** 3 for s in updates[1:]}
    want = written[updates[0]] * np.prod([rho[s] for s in updates[1:]])
    for j in updates[1:]:
        want += (1 - rho[j]) * written[j] * np.prod([rho[k] for k in updates[1:] if k > j])
    assert model[0].weight.item() == pytest.approx(want, rel=1e-6)
    assert bn.running_mean.item() == pytest.approx(2 * want, rel=1e-6)  # float buffers are averaged too
    assert bn.num_batches_tracked.item() == 0  # integers are not


def test_lookahead_does_nothing_before_its_start_and_resets_the_weights_each_epoch():
    model = nn.Linear(1, 1, bias=False)
    la = Lookahead(model, total_steps=30, steps_per_epoch=5)  # airbench: from epoch 3 on, every 5 steps
    for s in range(1, 16):
        model.weight.data.fill_(float(s))
        la.after_step(s)
    assert la.ema is None and model.weight.item() == 15.0
    for s in (16, 17, 18, 19, 20):  # epoch 3: step 20 starts the average
        model.weight.data.fill_(float(s))
        la.after_step(s)
    model.weight.data.fill_(99.0)
    la.end_epoch()
    assert model.weight.item() == 20.0
    with pytest.raises(ValueError, match="total_steps"):
        Lookahead(model, 0, 5)


def test_an_interrupted_lookahead_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import kdtutor.images.train as train

    cfg = small_airbench_cfg(epochs=5, lookahead=True)
    full = train_model("airbench_small", MINI, cfg, device="cpu", progress=False)
    real_save = train.save_checkpoint

    def stop_after_epoch_4(*args, **kwargs):  # the same run (code, loss, data), stopped in epoch 5
        real_save(*args, **kwargs)
        if kwargs["epochs_done"] == 4:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pt"
    with monkeypatch.context() as m:
        m.setattr(train, "save_checkpoint", stop_after_epoch_4)
        with pytest.raises(KeyboardInterrupt):
            train_model("airbench_small", MINI, cfg, checkpoint=ckpt, device="cpu", progress=False)
    assert load_checked(ckpt, "checkpoint")["epochs_done"] == 4
    resumed = train_model("airbench_small", MINI, cfg, checkpoint=ckpt, device="cpu", progress=False)
    assert same_weights(resumed.model, full.model)


# --------------------------------------------------------------------------- TTA
class Recorder(nn.Module):
    """A fixed linear map of the flattened image that remembers every input it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.map = nn.Linear(3 * 8 * 8, 5)

    def forward(self, x):
        self.seen.append(x.clone())
        return self.map(x.flatten(1))


def test_tta_level_2_averages_exactly_airbenchs_six_views():
    torch.manual_seed(0)
    x, model = torch.randn(4, 3, 8, 8), Recorder()
    padded = torch.from_numpy(np.pad(x.numpy(), ((0, 0), (0, 0), (1, 1), (1, 1)), mode="reflect"))
    up_left, down_right = padded[..., :8, :8], padded[..., 2:, 2:]
    views = [x, x.flip(-1), up_left, up_left.flip(-1), down_right, down_right.flip(-1)]
    with torch.no_grad():
        got = tta_logits(model, x, level=2)
        f = lambda v: model.map(v.flatten(1))  # noqa: E731
        want = 0.25 * (f(x) + f(x.flip(-1))) + 0.125 * sum(f(v) for v in views[2:])
    assert torch.allclose(got, want, atol=1e-6)
    assert len(model.seen) == 6 and all(any(torch.equal(s, v) for s in model.seen) for v in views)
    assert sum(w for w, _ in tta_views(x, 2)) == 1.0
    assert [w for w, _ in tta_views(x, 1)] == [0.5, 0.5] and len(tta_views(x, 0)) == 1
    with pytest.raises(ValueError, match="TTA level"):
        tta_views(x, 3)


def test_predict_with_tta_2_uses_the_six_views_in_float32():
    ds = make_standin(20, 8, 8)
    torch.manual_seed(1)
    model = build_model("cnn_tiny").eval()
    loader = train.eval_loader(ds, "val", "cpu", batch_size=3)
    logits, labels = predict(model, loader, tta=2)
    x = loader.clean_images(torch.arange(8))
    with torch.no_grad():
        assert torch.allclose(logits, tta_logits(model, x, 2), atol=1e-5)
        assert not torch.allclose(logits, predict(model, loader, tta=1)[0], atol=1e-4)
    assert logits.dtype == torch.float32 and torch.equal(labels, ds.val.labels)


# --------------------------------------------------------------------------- initialisation
def test_dirac_init_makes_3x3_convolutions_the_identity_on_their_first_channels():
    torch.manual_seed(0)
    model = build_model("airbench_small")
    whiten_before = model.whiten.weight.clone()
    dirac_init_(model)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) == 6
    for conv in convs:
        x = torch.randn(2, conv.in_channels, 6, 6)
        y = conv(x)
        assert torch.equal(y[:, :conv.in_channels], x)  # identity on the first C_in outputs
        if conv.out_channels > conv.in_channels:
            assert y[:, conv.in_channels:].abs().sum() > 0  # the others keep their random filters
    assert torch.equal(model.whiten.weight, whiten_before)


def test_whitening_bias_starts_at_zero_trains_three_epochs_then_freezes(monkeypatch):
    biases, grad_on = [], []
    original = train._measure

    def record(epoch_record, model, *a, **kw):  # after each epoch's steps
        biases.append(model.whiten.bias.detach().clone())
        grad_on.append(model.whiten.bias.requires_grad)
        return original(epoch_record, model, *a, **kw)

    monkeypatch.setattr(train, "_measure", record)
    cfg = small_airbench_cfg(epochs=5, whiten_bias_epochs=3)
    model, train_loader, val_loader, _ = prepare_run("airbench_small", MINI, cfg, device="cpu")
    assert torch.equal(model.whiten.bias, torch.zeros_like(model.whiten.bias))
    fit(model, train_loader, val_loader, cfg, progress=False)
    assert grad_on == [True, True, True, False, False]
    assert not torch.equal(biases[0], biases[1]) and not torch.equal(biases[1], biases[2])
    assert torch.equal(biases[2], biases[3]) and torch.equal(biases[3], biases[4])
    biases.clear()
    legacy = small_airbench_cfg(epochs=5)  # the cpu/smoke teacher: random start, trained throughout
    model, train_loader, val_loader, _ = prepare_run("airbench_small", MINI, legacy, device="cpu")
    assert model.whiten.bias.abs().sum() > 0
    fit(model, train_loader, val_loader, legacy, progress=False)
    assert not torch.equal(biases[3], biases[4])


def test_whitening_helpers_refuse_a_model_without_that_layer():
    with pytest.raises(ValueError, match="no whitening layer"):
        set_whiten_bias_trainable(build_model("cnn_tiny"), False)
    assert whiten_bias(build_model("airbench_small")).shape == (24,)


# --------------------------------------------------------------------------- train + val
def test_training_on_train_and_val_uses_every_image_and_claims_no_validation():
    merged = with_val_in_train(TINY)
    assert len(merged.train) == 160 and len(merged.val) == 0
    assert torch.equal(merged.train.images[120:], TINY.val.images)
    cfg = dataclasses.replace(recipes.student_config(epochs=2, batch_size=40), train_on_val=True)
    model, train_loader, val_loader, meta = prepare_run("cnn_tiny", TINY, cfg, device="cpu")
    assert val_loader is None and train_loader.num_examples == 160 and meta["n_train"] == 160
    r = train_model("cnn_tiny", TINY, cfg, device="cpu", progress=False)
    assert not r.history.validated and r.history.best_epoch is None and r.meta["val_acc"] is None
    assert "no validation" in r.history.summary() and len(r.history.epochs) == 2


# --------------------------------------------------------------------------- the recipes
def test_the_extras_are_on_for_the_gpu_teacher_only():
    gpu = config_for("airbench", 10, 1024)
    assert gpu.lookahead and gpu.dirac_init and gpu.whiten_bias_epochs == 3 and gpu.alternate_flip
    assert not gpu.train_on_val and airbench_config(train_on_val=True).train_on_val
    for name in ("smoke", "cpu"):
        p = get_profile(name)
        for arch, epochs in ((p.teacher, p.teacher_epochs), (p.student, p.student_epochs)):
            cfg = config_for(arch, epochs, p.batch_size)
            # the students' plain TrainConfig has no airbench extras at all; airbench_small's are off
            assert [getattr(cfg, k, None) or None for k in EXTRAS] == [None] * 5, (name, arch)
            assert cfg.amp == "auto" and not cfg.deterministic and cfg.val_every == cfg.checkpoint_every == 1


def test_run_identity_of_the_cpu_recipes_is_what_it_was_before_the_extras():
    """Checkpoints written before these options existed still name the same run."""
    old_fields = ["epochs", "batch_size", "lr", "momentum", "weight_decay", "bn_bias_lr_scale", "label_smoothing",
                  "warmup", "start_lr", "final_lr", "seed"]
    for arch in ("airbench_small", "cnn_tiny", "cnn_small"):
        assert list(config_identity(config_for(arch, 5, 250))) == old_fields
    gpu = config_identity(config_for("airbench", 10, 1024))
    assert gpu["lookahead"] and gpu["whiten_bias_epochs"] == 3 and "val_every" not in gpu
    assert config_identity(small_airbench_cfg(val_every=3, checkpoint_every=2, deterministic=True)) == \
        config_identity(small_airbench_cfg())  # bookkeeping is not identity


def _plain_loop(arch, data, cfg):
    """Training as kdtutor did before airbench's extras, written out: seed, build, whiten,
    independent flips + 2-pixel translations, Nesterov SGD on the warm-up/decay schedule, fp32."""
    torch.manual_seed(cfg.seed)
    model = build_model(arch)
    loader = DeviceLoader(data.train, cfg.batch_size, data.mean, data.std, train=True, seed=cfg.seed)
    if hasattr(model, "init_whitening"):
        model.init_whitening(loader.clean_images(torch.arange(min(5000, len(data.train)))))
    optimizer = make_optimizer(model, cfg)
    total = cfg.epochs * len(loader)
    for epoch in range(cfg.epochs):
        model.train()
        loader.set_epoch(epoch)
        for i, batch in enumerate(loader):
            for g in optimizer.param_groups:
                g["lr"] = g["base_lr"] * lr_factor(epoch * len(loader) + i, total, cfg)
            loss = cross_entropy(model(batch.images), batch.labels, label_smoothing=cfg.label_smoothing, check=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model


@pytest.mark.parametrize("role", ["teacher", "student"])
def test_smoke_and_cpu_recipes_train_exactly_as_the_plain_loop(role):
    p = get_profile("smoke")
    data = make_standin(500, 10, 10, seed=2)  # 2 steps per epoch at the profile's batch size
    arch = p.teacher if role == "teacher" else p.student
    cfg = config_for(arch, 2, p.batch_size, seed=1)
    ours = train_model(arch, data, cfg, device="cpu", progress=False)
    assert same_weights(ours.model, _plain_loop(arch, data, cfg))


@pytest.fixture(scope="module")
def without_extras():
    return train_model("airbench_small", MINI, small_airbench_cfg(), device="cpu", progress=False).model


@pytest.mark.parametrize("extra", [dict(lookahead=True), dict(dirac_init=True), dict(whiten_bias_epochs=3),
                                   dict(alternate_flip=True), dict(train_on_val=True)])
def test_each_extra_changes_training_when_switched_on(without_extras, extra):
    on = train_model("airbench_small", MINI, small_airbench_cfg(**extra), device="cpu", progress=False)
    assert not same_weights(without_extras, on.model)


def test_cached_teacher_logits_follow_alternating_flips():
    torch.manual_seed(0)
    teacher = freeze(build_model("cnn_tiny"))
    cfg = small_airbench_cfg(alternate_flip=True)
    loader = train.make_train_loader(MINI, cfg, "cpu")
    online, cached = TeacherLogits(teacher, loader, "online"), TeacherLogits(teacher, loader, "cached")
    for epoch in range(3):
        loader.set_epoch(epoch)
        for batch in loader:
            assert torch.allclose(online(batch), cached(batch), atol=1e-5)
    assert len(cached.cache) == 3 and all(k[3] == "alternate" for k in cached.cache)
