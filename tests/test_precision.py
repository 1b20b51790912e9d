"""kdtutor.precision and its use by the training loop: precision by device (capability mocked),
the fp16/bf16 autocast paths run on the CPU, fp32 evaluation, determinism, channels-last, clocks."""

import dataclasses

import pytest
import torch

from kdtutor import precision
from kdtutor.checkpoints import save_checkpoint
from kdtutor.images.train import load_checkpoint
from kdtutor.images.distill import all_teacher_logits, freeze, teacher_forward
from kdtutor.images.models import build_model
from kdtutor.images.predict import predict
from kdtutor.images.recipes import TrainConfig, student_config
from kdtutor.images.standin import make_standin
from kdtutor.images.train import fit, make_loaders, prepare_run, train_model
from kdtutor.precision import (Stopwatch, amp_dtype, autocast, determinism, dtype_name, full_precision,
                               grad_scaler, is_channels_last, loss_scaling, resolve_amp)

TINY = make_standin(120, 40, 40, seed=0)


def tiny_cfg(**kw):
    return dataclasses.replace(student_config(epochs=1, batch_size=40), **kw)


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


# --------------------------------------------------------------------------- choosing the precision
@pytest.mark.parametrize("capability, want", [
    ((9, 0), torch.bfloat16),  # H100
    ((8, 0), torch.bfloat16),  # A100
    ((8, 6), torch.bfloat16),  # RTX 30xx
    ((7, 5), torch.float16),  # T4
    ((7, 0), torch.float16),  # V100
    ((6, 0), torch.float16),  # P100
    ((6, 1), None),  # GTX 10xx: fp16 arithmetic is slower than fp32
    ((5, 2), None),
])
def test_amp_dtype_follows_the_compute_capability(monkeypatch, capability, want):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert amp_dtype("cuda") == want and amp_dtype(torch.device("cuda", 0)) == want
    assert resolve_amp("cuda", "auto") == want
    assert loss_scaling("cuda", amp_dtype("cuda")) == (want == torch.float16)


def test_cpu_trains_in_float32_unless_told_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: pytest.fail("not a GPU question"))
    assert amp_dtype("cpu") is None and resolve_amp("cpu") is None
    assert resolve_amp("cpu", "bf16") == torch.bfloat16 and resolve_amp("cuda", "fp32") is None
    assert not loss_scaling("cpu", torch.float16) and not loss_scaling("cuda", torch.bfloat16)
    assert dtype_name(None) == "float32" and dtype_name(torch.float16) == "float16"


def test_bad_precision_settings_are_refused():
    with pytest.raises(ValueError, match="amp must be one of"):
        resolve_amp("cpu", "half")
    with pytest.raises(ValueError, match="amp must be one of"):
        TrainConfig(amp="float16")
    with pytest.raises(ValueError, match="not a device"):
        amp_dtype("gpu0")


def test_autocast_casts_on_the_cpu_only_when_asked():
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    with autocast("cpu"):
        assert conv(x).dtype == torch.float32
    for dtype in (torch.bfloat16, torch.float16):
        with autocast("cpu", dtype):
            assert conv(x).dtype == dtype


# --------------------------------------------------------------------------- the loop uses it
def _record_dtypes(model):
    seen = []
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first_conv.register_forward_hook(lambda m, i, out: seen.append(out.dtype))
    return seen


class CountingScaler:
    """A real (disabled, on the CPU) GradScaler that counts the calls the loop makes."""

    def __init__(self, device, dtype):
        self.inner, self.calls = torch.amp.GradScaler("cpu", enabled=False), []
        self.dtype = dtype

    def scale(self, loss):
        self.calls.append("scale")
        return self.inner.scale(loss)

    def step(self, optimizer):
        self.calls.append("step")
        return self.inner.step(optimizer)

    def update(self):
        self.calls.append("update")
        self.inner.update()

    def is_enabled(self):
        return False

    def state_dict(self):
        return self.inner.state_dict()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_training_runs_under_the_devices_autocast_and_fp16_goes_through_the_scaler(monkeypatch, dtype):
    """amp_dtype is mocked to answer ``dtype`` for the CPU: the loop must train under that
    autocast (the fp16/bf16 code path, run on the CPU at tiny size) and call the scaler."""
    import kdtutor.images.train as train

    monkeypatch.setattr(precision, "amp_dtype", lambda device: dtype)
    scalers = []
    monkeypatch.setattr(train, "grad_scaler", lambda device, d: scalers.append(CountingScaler(device, d)) or scalers[-1])
    model, train_loader, val_loader, _ = prepare_run("cnn_tiny", TINY, tiny_cfg(), device="cpu")
    seen = _record_dtypes(model)
    history = fit(model, train_loader, val_loader, tiny_cfg(), progress=False)
    steps = len(train_loader)
    assert seen[:steps] == [dtype] * steps  # training forward passes in low precision
    assert seen[steps:] and set(seen[steps:]) == {torch.float32}  # validation in float32
    assert scalers[0].dtype == dtype and scalers[0].calls == ["scale", "step", "update"] * steps
    assert all(p.dtype == torch.float32 for p in model.parameters())  # weights stay fp32
    assert torch.isfinite(torch.tensor(history.column("train_loss"))).all()


def test_forcing_fp32_on_a_bf16_device_trains_as_on_the_cpu(monkeypatch):
    reference = train_model("cnn_tiny", TINY, tiny_cfg(), device="cpu", progress=False)
    monkeypatch.setattr(precision, "amp_dtype", lambda device: torch.bfloat16)
    auto = train_model("cnn_tiny", TINY, tiny_cfg(), device="cpu", progress=False)
    forced = train_model("cnn_tiny", TINY, tiny_cfg(amp="fp32"), device="cpu", progress=False)
    assert same_weights(forced.model, reference.model)
    assert not same_weights(auto.model, reference.model)  # bf16 autocast really ran


def test_evaluation_is_float32_even_where_training_is_not(monkeypatch):
    monkeypatch.setattr(precision, "amp_dtype", lambda device: torch.bfloat16)
    torch.manual_seed(0)
    model = build_model("cnn_tiny").eval()
    seen = _record_dtypes(model)
    _, val_loader, _ = make_loaders(TINY, 16, "cpu")
    logits, _ = predict(model, val_loader, tta=2)
    assert logits.dtype == torch.float32 and set(seen) == {torch.float32}
    x = val_loader.clean_images(torch.arange(8))
    with torch.no_grad():
        assert torch.allclose(predict(model, val_loader)[0][:8], model(x), atol=1e-6)


def test_teacher_targets_use_autocast_and_evaluation_logits_do_not(monkeypatch):
    monkeypatch.setattr(precision, "amp_dtype", lambda device: torch.bfloat16)
    torch.manual_seed(0)
    teacher = freeze(build_model("cnn_tiny"))
    seen = _record_dtypes(teacher)
    loader = make_loaders(TINY, 40, "cpu")[0]
    x = loader.clean_images(torch.arange(40))
    assert teacher_forward(teacher, x).dtype == torch.float32 and seen[-1] == torch.bfloat16
    assert teacher_forward(teacher, x, amp=False).dtype == torch.float32 and seen[-1] == torch.float32
    seen.clear()
    all_teacher_logits(teacher, loader)  # default: for evaluation
    assert set(seen) == {torch.float32}
    all_teacher_logits(teacher, loader, amp=True)  # as training targets
    assert set(seen) == {torch.float32, torch.bfloat16}


def test_full_precision_turns_tf32_off_on_cuda_and_restores_it():
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with full_precision("cuda"):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        with full_precision("cpu"):
            assert torch.backends.cudnn.allow_tf32  # nothing to change on the CPU
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


# --------------------------------------------------------------------------- determinism
def _flags():
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
            torch.are_deterministic_algorithms_enabled())


def test_determinism_switch_sets_and_restores_the_flags(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = _flags()
    with determinism("cuda", deterministic=False):
        assert _flags() == (True, before[1], before[2])  # speed: cuDNN autotuning
    assert _flags() == before
    with determinism("cuda", deterministic=True):
        assert _flags() == (False, True, True)
        assert torch.is_deterministic_algorithms_warn_only_enabled()  # warns, never stops a run
        import os
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert _flags() == before
    with determinism("cpu", deterministic=False):
        assert _flags() == before  # the CPU default touches nothing


def test_fit_trains_under_the_switch_and_gives_the_same_weights(monkeypatch):
    seen = []

    def loss_fn(logits, batch):
        seen.append(_flags())
        return torch.nn.functional.cross_entropy(logits, batch.labels)

    before = _flags()
    runs = []
    for deterministic in (True, False):
        cfg = tiny_cfg(deterministic=deterministic)
        model, train_loader, val_loader, _ = prepare_run("cnn_tiny", TINY, cfg, device="cpu")
        fit(model, train_loader, val_loader, cfg, loss_fn=loss_fn, progress=False)
        runs.append(model)
    steps = len(seen) // 2
    assert set(seen[:steps]) == {(False, True, True)} and set(seen[steps:]) == {before}
    assert _flags() == before
    assert same_weights(*runs)  # on the CPU both are reproducible: the switch is bookkeeping here


# --------------------------------------------------------------------------- channels-last, clocks
def test_load_checkpoint_gives_channels_last_where_the_device_prefers_it(tmp_path, monkeypatch):
    m = build_model("cnn_tiny")
    meta = {"arch": "cnn_tiny", "num_classes": 10, "in_channels": 3, "image_size": 32}
    path = save_checkpoint(tmp_path / "m.pt", m, meta)
    monkeypatch.setattr(precision, "prefers_channels_last", lambda device: False)
    plain, _ = load_checkpoint(path, device="cpu")
    assert not is_channels_last(plain)
    monkeypatch.setattr(precision, "prefers_channels_last", lambda device: True)  # as on CUDA and the CPU
    model, _ = load_checkpoint(path, device="cpu")
    assert is_channels_last(model) and not model.training
    x = torch.randn(2, 3, 32, 32)
    assert torch.allclose(model(x), plain(x), atol=1e-5)


def test_stopwatch_measures_seconds():
    import time

    clock = Stopwatch("cpu").start()
    time.sleep(0.02)
    assert 0.015 < clock.stop() < 5
    assert grad_scaler("cpu", torch.float16).is_enabled() is False


def test_stopwatch_on_cuda_times_with_events_on_that_devices_stream(monkeypatch):
    """The CUDA branch, with torch.cuda's events and streams mocked."""
    log = []

    class FakeEvent:
        def __init__(self, enable_timing=False):
            assert enable_timing

        def record(self, stream=None):
            log.append(("record", stream))

        def synchronize(self):
            log.append(("synchronize",))

        def elapsed_time(self, other):
            return 1500.0  # milliseconds, as CUDA reports them

    monkeypatch.setattr(torch.cuda, "Event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: f"stream of {device}")
    seconds = Stopwatch("cuda:1").start().stop()
    assert seconds == 1.5
    assert log == [("record", "stream of cuda:1"), ("record", "stream of cuda:1"), ("synchronize",)]
