"""kdtutor.images.data: CIFAR-format parsing and caching, the stand-in, digits, the device loader."""

import hashlib
import io
import pickle
import tarfile

import numpy as np
import pytest
import torch

from kdtutor.images import cifar10, data
from kdtutor.images.cifar10 import load_cifar10, parse_cifar_archive
from kdtutor.images.data import load_dataset
from kdtutor.images.loader import DeviceLoader, flip_batch, pad_images, translate_batch
from kdtutor.images.splits import Split
from kdtutor.images.standin import make_standin
from kdtutor.profiles import get_profile
from kdtutor.storage import CorruptFileError


# --------------------------------------------------------------------------- a CIFAR-format archive
def _batch(rng, n):
    return {b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, size=n).tolist(), b"batch_label": b"test"}


def write_fake_cifar(path, n_per_batch=6, seed=0):
    """A tar.gz with the layout of the official python-version archive; returns its contents."""
    rng = np.random.default_rng(seed)
    batches = {f"data_batch_{i}": _batch(rng, n_per_batch) for i in range(1, 6)}
    batches["test_batch"] = _batch(rng, n_per_batch)
    with tarfile.open(path, "w:gz") as tar:
        for name, content in batches.items():
            raw = pickle.dumps(content)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


def md5(path):
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_parse_reads_every_batch_in_order(tmp_path):
    path = tmp_path / cifar10.CIFAR10_ARCHIVE
    batches = write_fake_cifar(path)
    out = parse_cifar_archive(path)
    assert out["train_images"].shape == (30, 3, 32, 32) and out["train_images"].dtype == torch.uint8
    assert out["test_images"].shape == (6, 3, 32, 32)
    # row 7 of the training set is row 1 of data_batch_2; channel-major layout (R plane, G plane, B plane)
    row = batches["data_batch_2"][b"data"][1]
    assert torch.equal(out["train_images"][7, 1], torch.as_tensor(row[1024:2048].reshape(32, 32)))
    assert out["train_labels"][7].item() == batches["data_batch_2"][b"labels"][1]
    assert out["test_labels"].tolist() == batches["test_batch"][b"labels"]


def test_load_verifies_checksum_parses_caches_and_splits(tmp_path):
    path = tmp_path / cifar10.CIFAR10_ARCHIVE
    write_fake_cifar(path, n_per_batch=20)
    ds = load_cifar10(tmp_path, download=False, md5=md5(path))
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 20)
    assert ds.name == "CIFAR-10" and not ds.is_standin
    assert (tmp_path / cifar10.CIFAR10_CACHE).exists()
    path.unlink()  # the cache alone is enough now, and gives the same split
    again = load_cifar10(tmp_path, download=False)
    assert torch.equal(again.val.images, ds.val.images) and torch.equal(again.train.labels, ds.train.labels)


def test_truncated_archive_is_refused_with_advice(tmp_path):
    path = tmp_path / cifar10.CIFAR10_ARCHIVE
    write_fake_cifar(path)
    good = md5(path)
    path.write_bytes(path.read_bytes()[:-500])  # a half-finished download
    with pytest.raises(CorruptFileError, match="delete it"):
        load_cifar10(tmp_path, download=False, md5=good)
    with pytest.raises(CorruptFileError, match="cannot read"):
        parse_cifar_archive(path)


def test_archive_missing_a_batch_is_refused(tmp_path):
    path = tmp_path / "partial.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        raw = pickle.dumps(_batch(np.random.default_rng(0), 2))
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    with pytest.raises(CorruptFileError, match="lacks data_batch_2"):
        parse_cifar_archive(path)


def test_corrupt_cache_is_refused(tmp_path):
    path = tmp_path / cifar10.CIFAR10_ARCHIVE
    write_fake_cifar(path)
    load_cifar10(tmp_path, download=False, md5=md5(path))
    cache = tmp_path / cifar10.CIFAR10_CACHE
    raw = bytearray(cache.read_bytes())
    raw[-10] ^= 0xFF
    cache.write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match="checksum"):
        load_cifar10(tmp_path, download=False)


def test_download_removes_partial_file_and_checks_md5(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tvu

    fake = tmp_path / "source.tar.gz"
    write_fake_cifar(fake)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5(fake))
    calls = []

    def fake_download(url, root, filename=None, md5=None, **kw):
        target = tmp_path / filename
        assert not target.exists(), "a leftover .part file must be removed before downloading"
        calls.append(url)
        target.write_bytes(fake.read_bytes()[: len(calls) == 1 and 100 or None])  # 1st: cut short

    monkeypatch.setattr(tvu, "download_url", fake_download)
    with pytest.raises(CorruptFileError, match="incomplete or not the CIFAR-10 archive"):
        cifar10.download_cifar10(tmp_path)
    assert not (tmp_path / (cifar10.CIFAR10_ARCHIVE + ".part")).exists()
    (tmp_path / (cifar10.CIFAR10_ARCHIVE + ".part")).write_bytes(b"leftover")
    path = cifar10.download_cifar10(tmp_path)
    assert path.name == cifar10.CIFAR10_ARCHIVE and md5(path) == md5(fake) and len(calls) == 2


@pytest.mark.slow
def test_offline_cifar_profile_falls_back_to_labelled_standin(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KDTUTOR_OFFLINE", "1")
    monkeypatch.delenv("KDTUTOR_CIFAR10", raising=False)
    profile = get_profile("cpu").with_(n_train=200, n_val=50, n_test=50)
    ds = load_dataset(profile, root=tmp_path)
    assert ds.is_standin and "NOT CIFAR-10" in ds.name
    out = capsys.readouterr().out
    assert "STAND-IN" in out and "downloading is switched off" in out  # the true reason
    assert (len(ds.train), len(ds.val), len(ds.test)) == (200, 50, 50)


# --------------------------------------------------------------------------- stand-in and digits
def test_standin_is_deterministic_balanced_and_cifar_shaped():
    a, b = make_standin(200, 50, 50, seed=3), make_standin(200, 50, 50, seed=3)
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert a.train.images.shape == (200, 3, 32, 32) and a.train.images.dtype == torch.uint8
    assert torch.bincount(a.train.labels, minlength=10).tolist() == [20] * 10
    assert not torch.equal(make_standin(200, 50, 50, seed=4).train.images, a.train.images)
    assert set(a.classes).isdisjoint(cifar10.CIFAR10_CLASSES), "stand-in classes must not look like CIFAR-10's"


@pytest.mark.slow
def test_standin_needs_a_convnet_and_a_small_one_learns_it():
    """Colours are random, so a linear model on pixels stays near chance (10 %), while a
    40k-parameter CNN learns well above chance in a few seconds: real, non-trivial structure."""
    from sklearn.linear_model import LogisticRegression

    from kdtutor.images.metrics import top1_accuracy
    from kdtutor.images.predict import predict
    from kdtutor.images.train import make_loaders, train_model
    from kdtutor.images.recipes import student_config

    ds = make_standin(2000, 500, 500, seed=0)
    x = lambda s: torch.nn.functional.avg_pool2d(s.images.float() / 255, 4).flatten(1).numpy()  # noqa: E731
    linear = LogisticRegression(max_iter=300).fit(x(ds.train), ds.train.labels.numpy()).score(x(ds.test), ds.test.labels.numpy())
    cnn = train_model("cnn_tiny", ds, student_config(epochs=4, batch_size=100), device="cpu", progress=False)
    cnn_acc = top1_accuracy(*predict(cnn.model, make_loaders(ds, 500, "cpu")[2]))
    assert linear < 0.2 and cnn_acc > 0.3, (linear, cnn_acc)


def test_digits_splits_are_stratified_and_disjoint():
    ds = data.load_digits()
    assert ds.image_shape == (1, 8, 8) and ds.num_classes == 10
    assert len(ds.train) + len(ds.val) + len(ds.test) == 1797
    counts = torch.bincount(ds.test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    rows = lambda s: {tuple(r) for r in s.images.flatten(1).tolist()}  # noqa: E731
    assert len(rows(ds.train) & rows(ds.test)) < 5  # only exact duplicates inside digits itself


# --------------------------------------------------------------------------- augmentation and loader
def test_flip_batch_mirrors_only_flagged_images():
    x = torch.arange(2 * 1 * 2 * 3).reshape(2, 1, 2, 3)
    out = flip_batch(x, torch.tensor([True, False]))
    assert out[0].tolist() == [[[2, 1, 0], [5, 4, 3]]] and torch.equal(out[1], x[1])


def test_translate_batch_matches_slicing():
    x = torch.randint(0, 255, (3, 3, 8, 8), dtype=torch.uint8)
    padded = pad_images(x, 2)
    dx, dy = torch.tensor([0, 1, -2]), torch.tensor([0, 2, 1])
    out = translate_batch(padded, dx, dy, 2)
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1, :, :6, :7], x[1, :, 2:, 1:])  # window moved right 1, down 2
    assert torch.equal(out[2, :, :7, 2:], x[2, :, 1:, :6])


def test_reflect_padding_matches_torch():
    x = torch.randint(0, 255, (2, 3, 6, 6), dtype=torch.uint8)
    want = torch.nn.functional.pad(x.double(), (2, 2, 2, 2), mode="reflect")
    assert torch.equal(pad_images(x, 2).double(), want)


@pytest.mark.parametrize("pad", [1, 2, 5])
def test_reflect_padding_keeps_dtype_and_matches_torch_on_non_square_images(pad):
    x = torch.randint(0, 255, (2, 3, 6, 9), dtype=torch.uint8)
    out = pad_images(x, pad)
    assert out.dtype == torch.uint8  # padded in place of the data, no float copy
    want = torch.nn.functional.pad(x.double(), (pad,) * 4, mode="reflect")
    assert torch.equal(out.double(), want)
    with pytest.raises(ValueError, match="pad < min"):
        pad_images(x, 6)


def test_loaders_over_one_split_share_a_single_device_copy():
    ds = make_standin(64, 8, 8)
    a = DeviceLoader(ds.train, 16, ds.mean, ds.std, train=True)
    b = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, seed=4)
    c = DeviceLoader(ds.train, 16, ds.mean, ds.std)  # not padded: the split itself on the CPU
    assert a.images is b.images and a.images.shape[-1] == 36
    assert c.images is ds.train.images
    other = make_standin(64, 8, 8)  # equal values, another tensor: its own copy
    assert DeviceLoader(other.train, 16, other.mean, other.std, train=True).images is not a.images


def test_drop_last_gives_equal_batches_and_changes_nothing_when_the_batch_divides_n():
    ds = make_standin(100, 10, 10)
    kept = list(DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, drop_last=True))
    assert [len(b.labels) for b in kept] == [32, 32, 32]
    full = list(DeviceLoader(ds.train, 25, ds.mean, ds.std, train=True, drop_last=False))
    same = list(DeviceLoader(ds.train, 25, ds.mean, ds.std, train=True, drop_last=True))
    assert len(full) == len(same) == 4
    assert all(torch.equal(p.images, q.images) and torch.equal(p.index, q.index) for p, q in zip(full, same))


def test_alternating_flips_mirror_each_image_on_alternate_epochs():
    ds = make_standin(100, 10, 10)
    alt = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, seed=3, alternate_flip=True)
    ind = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, seed=3)
    flips, ind_flips = [], []
    for epoch in range(4):
        alt.set_epoch(epoch)
        ind.set_epoch(epoch)
        (o, f, dx, dy), (o2, f2, dx2, dy2) = alt.view_params(), ind.view_params()
        assert torch.equal(o, o2) and torch.equal(dx, dx2) and torch.equal(dy, dy2)  # only the flips differ
        flips.append(f)
        ind_flips.append(f2)
    assert torch.equal(flips[0], ind_flips[0])  # epoch 0: a coin per image, as with independent flips
    for e in range(1, 4):
        assert torch.equal(flips[e], ~flips[e - 1])  # then every image alternates
    assert not torch.equal(ind_flips[2], ~ind_flips[1])
    # a loader that starts at a later epoch (a resumed run) agrees
    late = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, seed=3, alternate_flip=True)
    late.set_epoch(3)
    assert torch.equal(late.view_params()[1], flips[3])


def test_alternating_flips_have_their_own_view_key_and_consistent_views():
    ds = make_standin(100, 10, 10)
    alt = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, alternate_flip=True)
    ind = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True)
    assert ind.view_key() == ("views", 0, 0, True, 2)  # unchanged for the usual flips
    assert alt.view_key() != ind.view_key()
    alt.set_epoch(1)
    for batch in alt:
        assert batch.view == alt.view_key() and torch.equal(alt.view_images(batch.index), batch.images)
    plain = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, flip=False, alternate_flip=True)
    assert not plain.alternate_flip and plain.view_key() == ("views", 0, 0, False, 2)


def _loader(seed=0, **kw):
    ds = make_standin(100, 10, 10)
    return DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, seed=seed, **kw), ds


def test_loader_epoch_covers_every_example_once_and_normalises():
    loader, ds = _loader()
    batches = list(loader)
    assert [len(b.labels) for b in batches] == [32, 32, 32, 4]
    index = torch.cat([b.index for b in batches])
    assert sorted(index.tolist()) == list(range(100))
    assert torch.equal(torch.cat([b.labels for b in batches]), ds.train.labels[index])
    x = torch.cat([b.images for b in batches])
    assert x.shape == (100, 3, 32, 32) and x.dtype == torch.float32
    assert abs(x.mean().item()) < 0.1 and abs(x.std().item() - 1) < 0.1


def test_loader_is_deterministic_by_seed_and_epoch():
    (a, _), (b, _), (c, _) = _loader(seed=1), _loader(seed=1), _loader(seed=2)
    first = [x.images for x in a]
    assert all(torch.equal(p, q.images) for p, q in zip(first, b))
    assert not torch.equal(first[0], next(iter(c)).images)
    a.set_epoch(1)
    assert not torch.equal(first[0], next(iter(a)).images)
    a.set_epoch(0)
    assert torch.equal(first[0], next(iter(a)).images)


def test_views_are_per_example_and_reproducible():
    loader, _ = _loader()
    batch = next(iter(loader))
    assert batch.view == loader.view_key() is not None
    assert torch.equal(loader.view_images(batch.index), batch.images)
    # the same example gets the same view whatever batch it is in
    i = batch.index[:1]
    assert torch.equal(loader.view_images(i), batch.images[:1])


def test_augmentation_changes_images_but_not_without_it():
    loader, ds = _loader()
    batch = next(iter(loader))
    assert not torch.equal(batch.images, loader.clean_images(batch.index))
    plain = DeviceLoader(ds.train, 32, ds.mean, ds.std, train=True, flip=False, translate=0)
    b = next(iter(plain))
    assert b.view is None and torch.equal(b.images, plain.clean_images(b.index))


def test_split_rejects_wrong_dtype_and_lengths():
    with pytest.raises(ValueError, match="uint8"):
        Split(torch.zeros(2, 3, 4, 4), torch.zeros(2))
    with pytest.raises(ValueError, match="do not match"):
        Split(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), torch.zeros(3))


def test_cifar10_available_looks_where_the_lessons_read_it(tmp_path, monkeypatch):
    monkeypatch.delenv(data.CIFAR10_ENV, raising=False)
    assert not cifar10.cifar10_available(tmp_path)
    (tmp_path / cifar10.CIFAR10_ARCHIVE).write_bytes(b"x")
    assert cifar10.cifar10_available(tmp_path)
    copy = tmp_path / "elsewhere" / "cifar10-jpeg.tar.gz"
    monkeypatch.setenv(data.CIFAR10_ENV, str(copy))
    assert not cifar10.cifar10_available(tmp_path / "empty")  # set: only the copy it names counts
    assert not cifar10.cifar10_available(tmp_path)
    copy.parent.mkdir()
    copy.write_bytes(b"x")
    assert cifar10.cifar10_available(tmp_path / "empty")


def test_channel_stats_match_numpy_in_float64():
    from kdtutor.images.splits import channel_stats

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (37, 3, 5, 7), generator=g, dtype=torch.uint8)
    images[:, 2] //= 7  # channels with different spreads
    mean, std = channel_stats(images)
    x = images.numpy().astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(std, x.transpose(1, 0, 2, 3).reshape(3, -1).std(axis=1, ddof=1), rtol=1e-12)
    flat = torch.full((4, 1, 2, 2), 9, dtype=torch.uint8)
    assert channel_stats(flat)[1] == (1e-3,)  # a constant channel is not divided by 0
