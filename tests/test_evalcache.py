"""The evaluation cache (kdtutor.evalcache): a hit gives exactly a fresh computation's result; any change of
the model, the data, a setting or the loop's code misses; a corrupt file is moved aside with a message."""

import pytest
import torch

from kdtutor import evalcache
from kdtutor.fingerprint import content_key
from kdtutor.images import models
from kdtutor.images.loader import DeviceLoader
from kdtutor.images.predict import cached_predict, predict
from kdtutor.images.splits import Split
from kdtutor.images.standin import make_standin
from kdtutor.images.train import eval_loader

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
        return content_key(DeviceLoader(Split(im, TINY.test.labels), batch_size, TINY.mean, TINY.std))

    assert key(images) == key(images.clone())  # equal content, another tensor: the same key
    assert key(images) != key(changed) and key(images) != key(images, batch_size=8)
    a, b = _model(), _model()
    assert content_key(a) == content_key(b)
    with torch.no_grad():
        next(b.parameters()).view(-1)[0] += 1e-6
    assert content_key(a) != content_key(b)


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
    with pytest.raises(TypeError, match="cannot key a result by .*object"):
        content_key(object())


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


# --------------------------------------------------------------------------- the six stale cases of issue 36
NOTEBOOK = '''
import torch
from torch import nn

LR = 0.1

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.T = 1.0

    def forward(self, x):
        return self.fc(x) / self.T

def step(model, x):
    return model(x).pow(2).mean()

def loop(model, x):
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    for _ in range(3):
        opt.zero_grad()
        step(model, x).backward()
        opt.step()
    print("ran")
'''


def _notebook(edit: str = ""):
    """A learner's notebook namespace (functions and classes of ``__main__``), with ``edit`` run after it."""
    ns = {"__name__": "__main__"}
    exec(NOTEBOOK + edit, ns)
    return ns


def _ran(ns, folder, capsys, loop=None, model_edit=None) -> bool:
    """Train a fresh model with the notebook's loop through evalcache.cached (the weights it leaves are the
    value); whether the loop ran (not loaded)."""
    torch.manual_seed(0)
    model = ns["Net"]()
    if model_edit:
        model_edit(model)
    train = loop or ns["loop"]
    x = torch.ones(4, 3)

    def make():
        train(model, x)
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    evalcache.cached("loop", {"model": model, "x": x}, make, folder=folder)
    return "ran\n" in capsys.readouterr().out


@pytest.mark.parametrize("case, edit, model_edit", [
    ("a global the loop reads", "LR = 0.2", None),
    ("an edited helper it calls", "def step(model, x):\n    return model(x).abs().mean()", None),
    ("a model class whose forward changed",
     "def _forward(self, x):\n    return torch.relu(self.fc(x)) / self.T\nNet.forward = _forward", None),
    ("a non-parameter attribute (T)", "", lambda m: setattr(m, "T", 2.0)),
])
def test_a_change_the_loop_depends_on_misses(case, edit, model_edit, tmp_path, capsys):
    assert _ran(_notebook(), tmp_path, capsys) and not _ran(_notebook(), tmp_path, capsys)  # a hit
    assert _ran(_notebook(edit), tmp_path, capsys, model_edit=model_edit), case


def test_a_closure_variable_misses(tmp_path, capsys):
    ns = _notebook("def make_loop(lr):\n    def loop_lr(model, x):\n        opt = torch.optim.SGD(model.parameters(), "
                   "lr=lr)\n        step(model, x).backward()\n        opt.step()\n        print('ran')\n    return loop_lr")
    assert _ran(ns, tmp_path, capsys, loop=ns["make_loop"](0.1))
    assert not _ran(ns, tmp_path, capsys, loop=ns["make_loop"](0.1))
    assert _ran(ns, tmp_path, capsys, loop=ns["make_loop"](0.3))


def test_a_function_input_whose_global_changed_misses(tmp_path):
    ns = _notebook("SCALE = 2.0\ndef f(x):\n    return x * SCALE")
    f = ns["f"]

    def value():
        return evalcache.cached("f", {"fn": f}, lambda: f(torch.ones(2)), folder=tmp_path)

    assert torch.equal(value(), torch.full((2,), 2.0)) and torch.equal(value(), torch.full((2,), 2.0))
    assert len(list(tmp_path.glob("f-*.pt"))) == 1  # the second call was a hit
    ns["SCALE"] = 3.0
    assert torch.equal(value(), torch.full((2,), 3.0)) and len(list(tmp_path.glob("f-*.pt"))) == 2


def test_what_cannot_be_keyed_is_refused_by_name(tmp_path):
    ns = _notebook("opt = object()\ndef loop_opt(model, x):\n    print(opt)")
    loop_opt, net = ns["loop_opt"], ns["Net"]()
    with pytest.raises(TypeError, match="'opt' that loop_opt reads"):
        evalcache.cached("loop", {"x": torch.ones(1)}, lambda: loop_opt(net, torch.ones(4, 3)), folder=tmp_path)
    assert not list(tmp_path.iterdir())
