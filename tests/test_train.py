"""kdtutor.images.train and kdtutor.storage: schedule, determinism, checkpoints, resume, NaN guard."""

import dataclasses

import pytest
import torch

from kdtutor import checkpoints
from kdtutor.checkpoints import save_checkpoint
from kdtutor.images.train import load_checkpoint
from kdtutor.images.models import build_model, count_parameters
from kdtutor.images.predict import predict
from kdtutor.images.recipes import TrainConfig, airbench_config, lr_factor, student_config
from kdtutor.images.standin import make_standin
from kdtutor.images.train import LossNotFiniteError, fit, hard_label_loss, make_loaders, prepare_run, train_model
from kdtutor.storage import CorruptFileError, load_checked, save_checked

TINY = make_standin(120, 40, 40, seed=0)


def tiny_cfg(**kw):
    return dataclasses.replace(student_config(epochs=2, batch_size=40), **kw)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- schedule and recipes
def test_lr_schedule_warms_up_then_decays_linearly():
    cfg = TrainConfig(warmup=0.25, start_lr=0.2, final_lr=0.1)
    f = [lr_factor(s, 100, cfg) for s in range(101)]
    assert f[0] == pytest.approx(0.2) and f[25] == pytest.approx(1.0) and f[100] == pytest.approx(0.1)
    assert all(a < b for a, b in zip(f[:25], f[1:26])) and all(a > b for a, b in zip(f[25:100], f[26:101]))
    assert f[62] == pytest.approx(1 + (0.1 - 1) * 37 / 75)


def test_airbench_recipe_rewritten_for_mean_loss():
    cfg = airbench_config(batch_size=1024)
    assert cfg.lr == pytest.approx(11.5 / (1 + 1 / 0.15))  # ≈ 1.5 per example-mean
    assert cfg.lr * cfg.weight_decay == pytest.approx(0.0153 * 1024 / (1024 * (1 + 1 / 0.15)))  # decay per step
    assert cfg.label_smoothing == 0.0 and cfg.momentum == 0.85 and cfg.bn_bias_lr_scale == 64  # the course: no smoothing
    assert airbench_config(label_smoothing=0.2).label_smoothing == 0.2  # airbench94's record setting


def test_model_sizes_match_the_course_table():
    assert 1.9e6 < count_parameters(build_model("airbench")) < 2.05e6  # airbench94: ~1.97M
    assert 30e3 < count_parameters(build_model("cnn_tiny")) < 50e3
    assert 100e3 < count_parameters(build_model("cnn_small")) < 200e3
    m = build_model("airbench")
    frozen = m.whiten.weight.numel() + sum(b.weight.numel() for b in m.modules() if isinstance(b, torch.nn.BatchNorm2d))
    assert count_parameters(m, trainable_only=True) == count_parameters(m) - frozen


def test_whitening_layer_decorrelates_patches():
    torch.manual_seed(0)
    images = torch.randn(200, 3, 16, 16)
    images = images + 0.8 * images.roll(1, dims=3) + 0.5 * images[:, :1]  # correlated pixels and channels
    m = build_model("airbench")
    m.init_whitening(images)
    out = m.whiten(images)[:, :12] - m.whiten.bias[:12, None, None]  # the positive half of the filters
    flat = out.permute(1, 0, 2, 3).reshape(12, -1)
    cov = torch.cov(flat)
    assert torch.allclose(cov, torch.eye(12), atol=0.05)


# --------------------------------------------------------------------------- determinism
def test_same_seed_gives_identical_weights_on_cpu():
    a = train_model("cnn_tiny", TINY, tiny_cfg(seed=3), device="cpu", progress=False)
    b = train_model("cnn_tiny", TINY, tiny_cfg(seed=3), device="cpu", progress=False)
    c = train_model("cnn_tiny", TINY, tiny_cfg(seed=4), device="cpu", progress=False)
    assert same_weights(a.model, b.model)
    assert a.history.column("train_loss") == b.history.column("train_loss")
    assert not same_weights(a.model, c.model)


def test_history_reports_best_and_last_epoch():
    r = train_model("cnn_tiny", TINY, tiny_cfg(epochs=3), device="cpu", progress=False)
    h = r.history
    assert len(h.epochs) == 3 and h.last_val_acc == h.epochs[-1]["val_acc"]
    assert h.best_val_acc == max(h.column("val_acc")) and h.column("val_acc")[h.best_epoch - 1] == h.best_val_acc
    assert all(e["images_per_s"] > 0 for e in h.epochs)
    assert r.meta["val_acc"] == h.last_val_acc and r.meta["dataset"] == TINY.name


def test_validation_every_k_epochs_and_always_after_the_last():
    h = train_model("cnn_tiny", TINY, tiny_cfg(epochs=5, val_every=2), device="cpu", progress=False).history
    assert h.points("val_acc")[0] == [2, 4, 5] and len(h.column("train_loss")) == 5
    assert h.best_epoch in (2, 4, 5) and h.last_val_acc == h.epochs[-1]["val_acc"]
    only_last = train_model("cnn_tiny", TINY, tiny_cfg(epochs=3, val_every=0), device="cpu", progress=False).history
    assert only_last.points("val_acc")[0] == [3]


def test_training_loaders_drop_the_last_partial_batch():
    loader = make_loaders(TINY, 50, "cpu")[0]
    assert len(loader) == 2 and {len(b.labels) for b in loader} == {50}
    assert len(make_loaders(TINY, 50, "cpu", drop_last=False)[0]) == 3
    with pytest.raises(ValueError, match="fewer than one batch"):
        model, train_loader, val_loader, _ = prepare_run("cnn_tiny", TINY, tiny_cfg(batch_size=200), device="cpu")
        fit(model, train_loader, val_loader, tiny_cfg(batch_size=200), progress=False)


# --------------------------------------------------------------------------- checkpoints
def test_checkpoint_every_k_epochs_and_after_the_last(tmp_path, monkeypatch):
    import kdtutor.images.train as train

    written = []
    original = checkpoints.save_checkpoint
    monkeypatch.setattr(train, "save_checkpoint",
                        lambda *a, **k: written.append(k["epochs_done"]) or original(*a, **k))
    train_model("cnn_tiny", TINY, tiny_cfg(epochs=5, checkpoint_every=2), checkpoint=tmp_path / "c.pt",
                device="cpu", progress=False)
    assert written == [2, 4, 5]
    written.clear()  # the cadence is bookkeeping: a run with another cadence loads the finished checkpoint
    again = train_model("cnn_tiny", TINY, tiny_cfg(epochs=5), checkpoint=tmp_path / "c.pt", device="cpu", progress=False)
    assert written == [] and len(again.history.epochs) == 5


def test_config_values_are_checked():
    for bad in (dict(epochs=0), dict(batch_size=0), dict(val_every=-1), dict(checkpoint_every=0)):
        with pytest.raises(ValueError):
            tiny_cfg(**bad)
    with pytest.raises(ValueError, match="whiten_bias_epochs"):
        dataclasses.replace(airbench_config(epochs=2), whiten_bias_epochs=-1)  # airbench's own config
    with pytest.raises(TypeError):
        tiny_cfg(lookahead=True)  # the students' config has no airbench extras


def test_checkpoint_round_trip(tmp_path):
    r = train_model("cnn_tiny", TINY, tiny_cfg(epochs=1), device="cpu", progress=False)
    path = save_checkpoint(tmp_path / "m.pt", r.model, r.meta)
    model, meta = load_checkpoint(path, arch="cnn_tiny")
    assert meta["arch"] == "cnn_tiny" and meta["dataset"] == TINY.name and meta["seed"] == 0
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(model(x), r.model.eval()(x))
    assert not list(tmp_path.glob(".*.tmp")), "no temporary file left behind"


def test_checkpoint_of_another_architecture_is_refused(tmp_path):
    m = build_model("cnn_tiny")
    meta = {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32}
    save_checkpoint(tmp_path / "m.pt", m, meta)
    with pytest.raises(ValueError, match="holds a 'cnn_tiny' model, not 'airbench'"):
        load_checkpoint(tmp_path / "m.pt", arch="airbench")
    save_checkpoint(tmp_path / "lie.pt", m, {**meta, "arch": "cnn_small"})  # weights do not fit the name
    with pytest.raises(ValueError, match="do not fit"):
        load_checkpoint(tmp_path / "lie.pt")


@pytest.mark.parametrize("damage", ["flip", "truncate", "header"])
def test_corrupt_checkpoint_gives_a_clear_error(tmp_path, damage):
    path = save_checkpoint(tmp_path / "m.pt", build_model("cnn_tiny"),
                           {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32})
    raw = bytearray(path.read_bytes())
    if damage == "flip":
        raw[len(raw) // 2] ^= 0x01
    elif damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        raw[:8] = b"NOTOURS!"
    path.write_bytes(bytes(raw))
    # delete-advice only for a file with kdtutor's header: without it, kdtutor cannot know it wrote the file
    with pytest.raises(CorruptFileError, match="not a kdtutor file" if damage == "header" else "delete"):
        load_checkpoint(path)


def test_checked_file_of_another_kind_is_refused(tmp_path):
    save_checked({"x": torch.ones(2)}, tmp_path / "f.pt", kind="cifar10")
    with pytest.raises(CorruptFileError, match="expected a 'checkpoint'"):
        load_checked(tmp_path / "f.pt", kind="checkpoint")


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch):
    import kdtutor.images.train as train

    cfg = tiny_cfg(epochs=3)
    full = train_model("cnn_tiny", TINY, cfg, device="cpu", progress=False)
    real_save = train.save_checkpoint

    def interrupt_after_epoch_2(*args, **kwargs):  # the same run (code, loss, data), stopped in epoch 3
        real_save(*args, **kwargs)
        if kwargs["epochs_done"] == 2:
            raise KeyboardInterrupt

    ckpt = tmp_path / "run.pt"
    with monkeypatch.context() as m:
        m.setattr(train, "save_checkpoint", interrupt_after_epoch_2)
        with pytest.raises(KeyboardInterrupt):
            train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)
    assert load_checked(ckpt, "checkpoint")["epochs_done"] == 2  # nothing already saved was lost

    resumed = train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)
    assert len(resumed.history.epochs) == 3
    assert same_weights(resumed.model, full.model)
    # a finished checkpoint is loaded, not retrained
    again = train_model("cnn_tiny", TINY, cfg, checkpoint=ckpt, device="cpu", progress=False)
    assert same_weights(again.model, full.model)


def test_checkpoint_of_a_different_run_is_not_resumed(tmp_path):
    ckpt = tmp_path / "run.pt"
    train_model("cnn_tiny", TINY, tiny_cfg(epochs=1), checkpoint=ckpt, device="cpu", progress=False)
    with pytest.raises(ValueError, match="different run"):
        train_model("cnn_tiny", TINY, tiny_cfg(epochs=1, seed=9), checkpoint=ckpt, device="cpu", progress=False)


def test_nan_loss_stops_training_with_a_clear_error():
    model, train_loader, val_loader, _ = prepare_run("cnn_tiny", TINY, tiny_cfg(), device="cpu")
    with pytest.raises(LossNotFiniteError, match="lower the learning rate"):
        fit(model, train_loader, val_loader, tiny_cfg(lr=1e30), progress=False)


def test_predict_returns_split_order_and_tta_averages_mirrors():
    model = build_model("cnn_tiny").eval()
    _, val_loader, _ = make_loaders(TINY, 16, "cpu")
    logits, labels = predict(model, val_loader)
    assert torch.equal(labels, TINY.val.labels)
    x = val_loader.clean_images(torch.arange(len(TINY.val)))
    with torch.no_grad():
        assert torch.allclose(logits, model(x), atol=1e-5)
        tta, _ = predict(model, val_loader, tta=True)
        assert torch.allclose(tta, (model(x) + model(x.flip(-1))) / 2, atol=1e-5)


def _tiny_profile():
    from kdtutor.profiles import get_profile

    return get_profile("smoke").with_(teacher="cnn_tiny", teacher_epochs=1, batch_size=40)


def test_get_teacher_trains_loads_and_replaces_an_unusable_checkpoint(tmp_path, monkeypatch, capsys):
    import kdtutor.images.train as train

    monkeypatch.setattr(train, "CHECKPOINT_DIR", tmp_path)
    profile = _tiny_profile()
    first = train.get_teacher(profile, TINY, device="cpu", progress=False)
    path = train.teacher_path(profile)
    assert path.parent == tmp_path and path.exists()
    again = train.get_teacher(profile, TINY, device="cpu", progress=False)  # loaded, not retrained
    assert same_weights(first.model, again.model) and "already complete" in capsys.readouterr().out
    path.write_bytes(path.read_bytes()[:-100])  # a truncated file
    redone = train.get_teacher(profile, TINY, device="cpu", progress=False)
    assert "moved it to" in capsys.readouterr().out and path.with_suffix(".pt.old").exists()
    assert same_weights(first.model, redone.model)  # retrained, with the same seed


def test_get_teacher_does_not_swallow_errors_raised_while_training(tmp_path, monkeypatch):
    """Only an unusable checkpoint file is moved aside; an error in epoch 2 (after epoch 1 was
    checkpointed) reaches the learner, and the saved epoch stays where it is."""
    import kdtutor.images.train as train

    monkeypatch.setattr(train, "CHECKPOINT_DIR", tmp_path)
    original = train._measure

    def fails_in_epoch_2(record, *a, **kw):  # after epoch 2's steps, before its checkpoint
        if record["epoch"] == 2:
            raise ValueError("boom in epoch 2")
        return original(record, *a, **kw)

    monkeypatch.setattr(train, "_measure", fails_in_epoch_2)
    profile = _tiny_profile().with_(teacher_epochs=2)
    with pytest.raises(ValueError, match="boom in epoch 2"):
        train.get_teacher(profile, TINY, device="cpu", progress=False)
    assert not list(tmp_path.glob("*.old"))
    assert load_checked(train.teacher_path(profile), "checkpoint")["epochs_done"] == 1


# --------------------------------------------------------------------------- the step a learner reads
def test_fit_with_its_extras_off_makes_exactly_the_updates_of_train_step():
    """fit = for each batch: set the scheduled learning rate, then train_step. With Lookahead,
    whitening-bias freezing, validation, checkpoints and mixed precision off, a hand-written loop
    over train_step gives bit-identical weights."""
    import copy

    from kdtutor.images.recipes import make_optimizer
    from kdtutor.images.train import train_step

    cfg = tiny_cfg(epochs=2)
    assert type(cfg) is TrainConfig and cfg.amp in (None, "auto")  # no airbench extras: the plain recipe
    torch.manual_seed(3)
    model = build_model("cnn_tiny")
    mine = copy.deepcopy(model)
    fit(model, make_loaders(TINY, cfg.batch_size, torch.device("cpu"), seed=cfg.seed)[0], None, cfg, progress=False)

    loader = make_loaders(TINY, cfg.batch_size, torch.device("cpu"), seed=cfg.seed)[0]
    optimizer, loss_fn = make_optimizer(mine, cfg), hard_label_loss(cfg.label_smoothing)
    total, step = cfg.epochs * len(loader), 0
    mine.train()
    for epoch in range(cfg.epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            for group in optimizer.param_groups:
                group["lr"] = group["base_lr"] * lr_factor(step, total, cfg)
            train_step(mine, batch, loss_fn, optimizer)
            step += 1
    assert same_weights(model, mine)
    next(mine.parameters()).data.view(-1)[0] += 1e-6  # the comparison can fail
    assert not same_weights(model, mine)


def test_train_step_makes_the_update_of_lesson_03s_plain_loop():
    """Lesson 03's loop (forward, cross-entropy, zero_grad, backward, step) and fit's train_step
    make the same update on a batch: bit-identical weights after two steps, given the same loss
    (fit's default, kdtutor's cross-entropy, equals PyTorch's up to rounding)."""
    import copy

    from kdtutor.images.train import train_step

    torch.manual_seed(0)
    plain = build_model("cnn_tiny")
    mine = copy.deepcopy(plain)
    opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt_mine = torch.optim.SGD(mine.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    loader = make_loaders(TINY, 40, torch.device("cpu"))[0]
    for batch in list(loader)[:2]:
        logits = plain(batch.images)
        loss = torch.nn.functional.cross_entropy(logits, batch.labels)
        opt_plain.zero_grad()
        loss.backward()
        opt_plain.step()
        _, step_loss = train_step(mine, batch, lambda z, b: torch.nn.functional.cross_entropy(z, b.labels), opt_mine)
        assert step_loss.item() == loss.item()
        assert torch.allclose(hard_label_loss()(logits, batch), loss, rtol=1e-6)
    assert same_weights(plain, mine)
    next(mine.parameters()).data.view(-1)[0] += 1e-6  # the comparison can fail
    assert not same_weights(plain, mine)


def test_max_weight_difference_sees_parameters_and_buffers_and_refuses_other_architectures():
    import copy

    from kdtutor.images.train import max_weight_difference

    torch.manual_seed(0)
    a = build_model("cnn_tiny")
    b = copy.deepcopy(a)
    assert max_weight_difference(a, b) == 0.0
    next(b.parameters()).data.view(-1)[3] += 0.25
    assert max_weight_difference(a, b) == pytest.approx(0.25)
    c = copy.deepcopy(a)
    bn = next(m for m in c.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.running_mean[0] -= 0.5  # a buffer, not a parameter
    assert max_weight_difference(a, c) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="same architecture"):
        max_weight_difference(a, build_model("cnn_small"))


def test_the_training_bar_stays_when_done(capsys):
    train_model("cnn_tiny", TINY, tiny_cfg(epochs=1), device="cpu", progress=True)
    last = capsys.readouterr().err.rstrip("\n").split("\r")[-1]  # what the terminal shows at the end
    assert "100%" in last, repr(last)
