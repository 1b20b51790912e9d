"""The evaluation cache (kdtutor.evalcache): a hit gives exactly a fresh computation's result; any change of
the model, the data, a setting or the loop's code misses; a corrupt file is moved aside with a message."""

import pytest
import torch

from kdtutor import evalcache
from kdtutor.images import models
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.predict import cached_predict, predict
from kdtutor.images.splits import Split
from kdtutor.images.standin import make_standin
from kdtutor.images.train import eval_loader, make_loaders

TINY = make_standin(60, 20, 30, seed=0)


def _model(seed=0):
    torch.manual_seed(seed)
    return models.build_model("cnn_tiny").eval()


def _counting(folder, inputs, value):
    """cached(...) with a make() that counts its calls."""
    calls = []
    out = evalcache.cached("thing", inputs, lambda: calls.append(1) or value(), folder=folder)
    return out, len(calls)


def test_hit_returns_the_fresh_tensors_and_does_not_recompute(tmp_path, monkeypatch):
    monkeypatch.setattr(evalcache, "EVAL_DIR", tmp_path)
    model, loader = _model(), eval_loader(TINY, "test", "cpu")
    fresh = predict(model, loader, tta=2)
    calls = []
    real = predict

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr("kdtutor.images.predict.predict", counted)
    first = cached_predict(model, loader, tta=2)
    second = cached_predict(model, loader, tta=2)
    assert len(calls) == 1 and len(list(tmp_path.glob("predict-*.pt"))) == 1
    for a, b, c in zip(fresh, first, second):
        assert torch.equal(a, b) and torch.equal(a, c)
    cached_predict(model, loader, tta=1)  # another setting: another result
    assert len(calls) == 2


def test_a_nudged_weight_or_changed_data_misses(tmp_path, monkeypatch):
    monkeypatch.setattr(evalcache, "EVAL_DIR", tmp_path)
    model, loader = _model(), eval_loader(TINY, "test", "cpu")
    before = cached_predict(model, loader)[0]
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1e-3
    after = cached_predict(model, loader)[0]
    assert torch.equal(after, predict(model, loader)[0]) and not torch.equal(before, after)
    other = eval_loader(TINY, "val", "cpu")  # same model, other images
    assert torch.equal(cached_predict(model, other)[0], predict(model, other)[0])
    assert len(list(tmp_path.glob("predict-*.pt"))) == 3


def test_the_key_is_the_content_not_the_object():
    images = TINY.test.images.clone()
    changed = images.clone()
    changed[0, 0, 0, 0] ^= 1  # one pixel, one bit

    def key(im, batch_size=16):
        return evalcache.content_key(DeviceLoader(Split(im, TINY.test.labels), batch_size, TINY.mean, TINY.std))

    assert key(images) == key(images.clone())  # equal content, another tensor: the same key
    assert key(images) != key(changed) and key(images) != key(images, batch_size=8)
    a, b = _model(), _model()
    assert evalcache.content_key(a) == evalcache.content_key(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6
    assert evalcache.content_key(a) != evalcache.content_key(b)


def test_a_corrupt_file_is_moved_aside_with_a_message(tmp_path, capsys):
    value, calls = _counting(tmp_path, {"x": 1}, lambda: torch.arange(3))
    (path,) = tmp_path.glob("thing-*.pt")
    path.write_bytes(path.read_bytes()[:-5])  # truncated
    again, calls = _counting(tmp_path, {"x": 1}, lambda: torch.arange(3))
    assert calls == 1 and torch.equal(again, value)
    assert "moved to" in capsys.readouterr().out and path.with_name(path.name + ".old").exists()


def test_other_settings_and_unknown_types():
    assert evalcache.cache_identity("a", {"T": 1.0}) != evalcache.cache_identity("a", {"T": 2.0})
    assert evalcache.cache_identity("a", {"T": 1.0}) != evalcache.cache_identity("b", {"T": 1.0})
    with pytest.raises(TypeError, match="cannot key a cache by a object"):
        evalcache.content_key(object())


def _loop(model, loader, epochs, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(model(batch.images), batch.labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")


def _loop_edited(model, loader, epochs, lr):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)  # the learner's change
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(model(batch.images), batch.labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")


def test_cached_loop_reuses_weights_and_printed_lines_until_anything_changes(tmp_path, capsys):
    loader = make_loaders(TINY, 20, "cpu")[0]
    fresh = _model().train()
    _loop(fresh, loader, 2, 0.05)
    printed = capsys.readouterr().out
    first = evalcache.cached_loop("loop", _loop, _model().train(), loader, 2, 0.05, folder=tmp_path)
    assert capsys.readouterr().out == printed
    hit = evalcache.cached_loop("loop", _loop, _model().train(), loader, 2, 0.05, folder=tmp_path)
    out = capsys.readouterr().out
    assert out.startswith(printed) and out[len(printed):].startswith("(loaded, not run")
    for model in (first, hit):
        for a, b in zip(fresh.state_dict().values(), model.state_dict().values()):
            assert torch.equal(a, b)
    n = len(list(tmp_path.glob("loop-*.pt")))
    evalcache.cached_loop("loop", _loop, _model().train(), loader, 2, 0.1, folder=tmp_path)  # other lr
    evalcache.cached_loop("loop", _loop, _model(seed=1).train(), loader, 2, 0.05, folder=tmp_path)  # other start
    evalcache.cached_loop("loop", _loop_edited, _model().train(), loader, 2, 0.05, folder=tmp_path)  # other code
    assert len(list(tmp_path.glob("loop-*.pt"))) == n + 3
    assert evalcache.code_key(_loop) != evalcache.code_key(_loop_edited)


def test_rerun_runs_the_loop_again(tmp_path, capsys):
    loader = make_loaders(TINY, 20, "cpu")[0]
    calls = []

    def loop(model, loader):
        calls.append(1)
        print("ran")

    for rerun in (False, False, True):
        evalcache.cached_loop("loop", loop, _model(), loader, rerun=rerun, folder=tmp_path)
    assert len(calls) == 2 and capsys.readouterr().out.count("ran\n") == 3
