"""Lesson 07's model and text: causality, the KV cache, sampling, vocabulary, contiguous splits,
windows that never cross a split, and where the text comes from (download verified by SHA-256)."""

import hashlib
import io

import pytest
import torch

from kdtutor.lm import text as tx
from kdtutor.images.models import count_parameters
from kdtutor.lm.model import KVCache, LMConfig, build_lm, generate
from kdtutor.storage import CorruptFileError

CFG = LMConfig(vocab_size=13, block_size=16, n_layer=2, n_head=2, n_embd=16)


# --------------------------------------------------------------------------- the model
def test_logits_shape_and_causality():
    model = build_lm(CFG, seed=0).eval()
    x = torch.randint(0, 13, (3, 16), generator=torch.Generator().manual_seed(0))
    z = model(x)
    assert z.shape == (3, 16, 13) and z.dtype == torch.float32
    y = x.clone()
    y[:, 9:] = (y[:, 9:] + 1) % 13  # change the future
    torch.testing.assert_close(model(y)[:, :9], z[:, :9])  # the past does not see it
    assert not torch.allclose(model(y)[:, 9:], z[:, 9:])


def test_kv_cache_gives_the_same_logits_as_one_pass():
    model = build_lm(CFG, seed=1).eval()
    x = torch.randint(0, 13, (2, 12), generator=torch.Generator().manual_seed(1))
    cache = KVCache(CFG.n_layer)
    parts = [model(x[:, :5], cache), model(x[:, 5:6], cache), model(x[:, 6:12], cache)]  # prefill, one, several
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(parts, 1), model(x), atol=1e-5, rtol=1e-5)


def test_same_seed_same_weights_and_tied_embeddings_counted_once():
    a, b = build_lm(CFG, seed=3), build_lm(CFG, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert a.head.weight is a.tok_emb.weight
    assert count_parameters(a) == sum(p.numel() for n, p in a.named_parameters())  # named_parameters dedups
    assert count_parameters(a) < sum(p.numel() for p in a.state_dict().values())  # the state dict holds it twice


@pytest.mark.parametrize("bad,match", [
    (lambda m: m(torch.zeros(1, 17, dtype=torch.int64)), "block_size"),
    (lambda m: m(torch.zeros(1, 4)), "int64"),
    (lambda m: generate(m, torch.zeros(1, 2, dtype=torch.int64), 3, temperature=0.0), "temperature"),
    (lambda m: generate(m, torch.zeros(1, 0, dtype=torch.int64), 3), "prompt"),
    (lambda m: LMConfig(13, 16, 2, 3, 16), "divisible"),
    (lambda m: LMConfig(0, 16, 2, 2, 16), "vocab_size"),
])
def test_bad_inputs_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        bad(build_lm(CFG, seed=0))


def _naive_sample(model, prompt, n_new, generator):
    """Reference: recompute the whole context for every character, no cache."""
    out = prompt
    for _ in range(n_new):
        probs = torch.softmax(model(out)[:, -1], -1)
        out = torch.cat([out, torch.multinomial(probs, 1, generator=generator)], 1)
    return out


def test_generate_equals_the_cacheless_reference_within_the_block():
    model = build_lm(CFG, seed=4).eval()
    prompt = torch.randint(0, 13, (4, 5), generator=torch.Generator().manual_seed(4))
    fast = generate(model, prompt, 12, generator=torch.Generator().manual_seed(9))  # 5 + 12 − 1 = 16 = block
    slow = _naive_sample(model, prompt, 12, torch.Generator().manual_seed(9))
    assert torch.equal(fast, slow)


def test_generate_beyond_the_block_and_reproducibility():
    model = build_lm(CFG, seed=5)
    prompt = torch.randint(0, 13, (2, 20), generator=torch.Generator().manual_seed(5))  # longer than the block
    a = generate(model, prompt, 40, generator=torch.Generator().manual_seed(1))
    b = generate(model, prompt, 40, generator=torch.Generator().manual_seed(1))
    assert a.shape == (2, 60) and torch.equal(a, b) and torch.equal(a[:, :20], prompt)
    assert int(a.min()) >= 0 and int(a.max()) < 13 and model.training


def test_low_temperature_picks_the_most_likely_character():
    model = build_lm(CFG, seed=6).eval()
    prompt = torch.randint(0, 13, (3, 4), generator=torch.Generator().manual_seed(6))
    out = generate(model, prompt, 1, temperature=1e-4)
    assert torch.equal(out[:, -1], model(prompt)[:, -1].argmax(-1))


# --------------------------------------------------------------------------- the text
def test_vocab_round_trip_and_unknown_character():
    v = tx.Vocab("hello, world")
    assert v.chars == sorted(set("hello, world")) and v.decode(v.encode("low, hello")) == "low, hello"
    with pytest.raises(ValueError, match="'z'"):
        v.encode("z")
    with pytest.raises(ValueError, match="empty"):
        tx.Vocab("")


def test_contiguous_splits_cover_the_text_in_order():
    ids = torch.arange(1000)
    train, val, test = tx.split_ids(ids)
    assert (len(train), len(val), len(test)) == (900, 50, 50)
    assert torch.equal(torch.cat([train, val, test]), ids)
    with pytest.raises(ValueError, match="fractions"):
        tx.split_ids(ids, (0.5, 0.5, 0.1))
    with pytest.raises(ValueError, match="too short"):
        tx.split_ids(torch.arange(10))


def test_windows_stay_inside_their_split():
    ids = torch.arange(100, 200)  # values = positions + 100: a window is contiguous iff its values step by 1
    w = tx.random_windows(ids, 500, 7, torch.Generator().manual_seed(0))
    assert w.shape == (500, 8)
    assert torch.all(w[:, 1:] - w[:, :-1] == 1) and int(w.min()) >= 100 and int(w.max()) <= 199
    assert int(w[:, -1].max()) == 199  # the last window can end at the split's end, no further
    with pytest.raises(ValueError, match="no window"):
        tx.random_windows(ids[:5], 1, 7, torch.Generator())


def test_tiled_windows_predict_every_character_once():
    ids = torch.arange(50)
    w = tx.tiled_windows(ids, 8)
    assert w.shape == (6, 9)
    assert torch.equal(w[:, 1:].flatten(), ids[1:49])
    assert len(tx.tiled_windows(ids, 8, limit=2)) == 2
    t = tx.transfer_windows(ids, 8, 3, seed=0)
    assert len(t) == 3 and all(any(torch.equal(r, s) for s in w) for r in t)
    assert torch.equal(t, tx.transfer_windows(ids, 8, 3, seed=0)) and torch.all(t[1:, 0] > t[:-1, 0])


def test_fingerprint_follows_the_training_and_validation_text():
    base = "abcdefgh" * 20
    a = tx.from_text(base, "a")
    assert a.fingerprint() == tx.from_text(base, "another name").fingerprint()
    assert a.fingerprint() != tx.from_text("abcdefhg" + base[8:], "b").fingerprint()  # train changed
    assert a.fingerprint() != tx.from_text(base[:148] + "hg" + base[150:], "c").fingerprint()  # validation changed


def test_a_local_copy_is_named_after_what_it_is(tmp_path, monkeypatch):
    other = tmp_path / "poems.txt"
    other.write_text("Roses are red,\nviolets are blue.\n" * 20)
    monkeypatch.setenv(tx.TEXT_ENV, str(other))
    data = tx.load_text(tmp_path / "nowhere")
    assert "poems.txt" in data.name and "NOT" in data.name and not data.is_standin
    monkeypatch.setenv(tx.TEXT_ENV, str(tmp_path / "missing.txt"))
    with pytest.raises(FileNotFoundError, match=tx.TEXT_ENV):
        tx.load_text(tmp_path)


def test_offline_without_a_copy_gives_the_labelled_standin(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(tx.TEXT_ENV, raising=False)
    data = tx.load_text(tmp_path, download=False, n_standin=5000)
    assert data.is_standin and data.name == tx.STANDIN_NAME and "NOT Shakespeare" in data.name
    assert "STAND-IN" in capsys.readouterr().out
    assert len(data.train) + len(data.val) + len(data.test) == 5000


class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_download_is_verified_then_renamed(tmp_path, monkeypatch):
    body = b"First Citizen:\nBefore we proceed any further, hear me speak.\n"
    monkeypatch.setattr(tx.urllib.request, "urlopen", lambda url, timeout: _Response(body))
    path = tx.download_text(tmp_path, sha256=hashlib.sha256(body).hexdigest())
    assert path.read_bytes() == body and not (tmp_path / (tx.FILENAME + ".part")).exists()


def test_a_wrong_download_is_removed(tmp_path, monkeypatch):
    monkeypatch.setattr(tx.urllib.request, "urlopen", lambda url, timeout: _Response(b"<html>captive portal</html>"))
    with pytest.raises(CorruptFileError, match="not tiny Shakespeare"):
        tx.download_text(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_network_leaves_nothing_behind(tmp_path, monkeypatch):
    def offline(url, timeout):
        raise OSError("no route to host")

    monkeypatch.setattr(tx.urllib.request, "urlopen", offline)
    with pytest.raises(tx.TextUnavailable, match="no route"):
        tx.download_text(tmp_path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv(tx.TEXT_ENV, raising=False)
    assert tx.load_text(tmp_path, verbose=False, n_standin=3000).is_standin


def test_a_cached_file_with_the_wrong_checksum_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(tx.TEXT_ENV, raising=False)
    (tmp_path / tx.FILENAME).write_text("not the play")
    with pytest.raises(CorruptFileError, match="delete it"):
        tx.load_text(tmp_path)


@pytest.mark.skipif(not (tx.Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt").exists(),
                    reason="needs ../shared/data/tinyshakespeare.txt (the offline copy of tiny Shakespeare)")
def test_the_reference_copy(monkeypatch):
    path = tx.Path(__file__).resolve().parents[2] / "shared/data/tinyshakespeare.txt"
    monkeypatch.setenv(tx.TEXT_ENV, str(path))
    data = tx.load_text()
    assert data.name == tx.NAME and len(data.vocab) == 65
    assert len(data.train) + len(data.val) + len(data.test) == 1_115_394
    assert data.vocab.decode(data.train[:14]) == "First Citizen:"
