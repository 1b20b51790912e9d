"""kdtutor.images.image_folder and KDTUTOR_CIFAR10: images from a folder or an archive, and clear errors."""

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from kdtutor.images import image_folder, splits
from kdtutor.images.cifar10 import CIFAR10_CLASSES
from kdtutor.images.data import load_dataset
from kdtutor.images.image_folder import load_image_folder
from kdtutor.profiles import get_profile


def _png(rgb) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_folder(root: Path, classes=("cat", "dog"), n=(6, 2), size=8, val=0, fmt="PNG", seed=0) -> dict:
    """Write root/{train,test[,val]}/<class>/<i>.png; return {(split, class, i): pixels (H, W, 3)}."""
    rng = np.random.default_rng(seed)
    pixels = {}
    for split, count in zip(("train", "test", "val"), (*n, val)):
        for cls in classes:
            for i in range(count):
                rgb = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
                path = root / split / cls / f"{i:04d}.{fmt.lower()}"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb).save(path, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
                pixels[split, cls, i] = rgb
    return pixels


def test_folder_pixels_labels_and_class_order(tmp_path):
    pixels = make_folder(tmp_path / "pets", classes=("dog", "cat"), n=(10, 3))
    ds = load_image_folder(tmp_path / "pets", cache_dir=tmp_path / "cache", progress=False)
    assert ds.classes == ["cat", "dog"]  # sorted names for non-CIFAR folders
    assert ds.name == "pets (image folder)" and not ds.is_standin and ds.source.endswith("pets")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (18, 2, 6)  # a tenth of train carved off as val
    assert ds.test.images.shape == (6, 3, 8, 8) and ds.test.images.dtype == torch.uint8
    # test images keep file order within class; class "cat" is label 0
    assert torch.equal(ds.test.images[0], torch.from_numpy(pixels["test", "cat", 0]).permute(2, 0, 1))
    assert ds.test.labels.tolist() == [0, 0, 0, 1, 1, 1]
    # every training image (train + val) appears once, with its own label
    seen = torch.cat([ds.train.images, ds.val.images]).flatten(1)
    want = {tuple(torch.from_numpy(v).permute(2, 0, 1).flatten().tolist()): k[1] for k, v in pixels.items() if k[0] == "train"}
    labels = torch.cat([ds.train.labels, ds.val.labels]).tolist()
    assert sorted(map(tuple, seen.tolist())) == sorted(want)
    assert all(ds.classes[y] == want[tuple(row)] for row, y in zip(seen.tolist(), labels))


def test_val_folder_is_used_when_present(tmp_path):
    make_folder(tmp_path / "d", n=(4, 2), val=3)
    ds = load_image_folder(tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (8, 6, 4)


def test_cifar_classes_get_cifar_order_and_a_copy_name(tmp_path):
    make_folder(tmp_path / "c10", classes=tuple(reversed(CIFAR10_CLASSES)), n=(1, 1), fmt="JPEG")
    ds = load_image_folder(tmp_path / "c10", cache_dir=tmp_path / "c", progress=False)
    assert ds.classes == list(CIFAR10_CLASSES)
    assert ds.name == "CIFAR-10 (JPEG copy)"


@pytest.mark.parametrize("kind", ["tar.gz", "tar", "zip"])
def test_archives_give_the_same_data_as_the_folder(tmp_path, kind):
    make_folder(tmp_path / "src" / "top", n=(5, 2))
    folder = load_image_folder(tmp_path / "src" / "top", cache_dir=tmp_path / "c1", progress=False)
    archive = tmp_path / f"top.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for f in sorted((tmp_path / "src").rglob("*")):
                zf.write(f, f.relative_to(tmp_path / "src").as_posix())
    else:
        with tarfile.open(archive, "w:gz" if kind == "tar.gz" else "w") as tar:
            tar.add(tmp_path / "src" / "top", arcname="top")
    ds = load_image_folder(archive, cache_dir=tmp_path / "c2", progress=False)
    assert ds.name == "top (image folder)"
    for split in ("train", "val", "test"):
        assert torch.equal(getattr(ds, split).images, getattr(folder, split).images)
        assert torch.equal(getattr(ds, split).labels, getattr(folder, split).labels)


def test_cache_is_used_and_a_changed_source_is_read_again(tmp_path, monkeypatch):
    make_folder(tmp_path / "d", n=(3, 1))
    first = load_image_folder(tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert len(list((tmp_path / "c").glob("*.pt"))) == 1
    calls = []
    real = image_folder.read_image_folder
    monkeypatch.setattr(image_folder, "read_image_folder", lambda *a, **k: calls.append(1) or real(*a, **k))
    again = load_image_folder(tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert not calls and torch.equal(again.test.images, first.test.images)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "d" / "test" / "cat" / "0000.png")
    changed = load_image_folder(tmp_path / "d", cache_dir=tmp_path / "c", progress=False)
    assert calls and changed.test.images[0].sum() == 0


def test_unwritable_cache_warns_and_carries_on(tmp_path):
    make_folder(tmp_path / "d", n=(2, 1))
    (tmp_path / "blocker").write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot write in .* not kept"):
        ds = load_image_folder(tmp_path / "d", cache_dir=tmp_path / "blocker" / "cache", progress=False)
    assert len(ds.test) == 2


@pytest.mark.parametrize("break_it, message", [
    (lambda r: (r / "train" / "cat" / "0001.png").write_bytes(b"not an image"), r"cannot decode the image .*train/cat/0001\.png"),
    (lambda r: Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(r / "train" / "dog" / "0000.png"), r"0000\.png is 8×9 pixels"),
    (lambda r: (r / "train" / "bird").mkdir(), r"train/bird/ has no images"),
    (lambda r: __import__("shutil").rmtree(r / "test"), r"no test/<class>/<image>"),
    (lambda r: make_folder(r, classes=("owl",), n=(0, 1)), r"test/ has classes that train/ lacks: owl"),
])
def test_bad_folders_get_clear_errors(tmp_path, break_it, message):
    make_folder(tmp_path / "d", n=(3, 1))
    break_it(tmp_path / "d")
    with pytest.raises(ValueError, match=message):
        load_image_folder(tmp_path / "d", cache_dir=tmp_path / "c", progress=False)


def test_not_a_folder_or_archive(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image folder"):
        load_image_folder(tmp_path / "nothing", progress=False)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="neither a folder nor"):
        load_image_folder(tmp_path / "notes.txt", progress=False)


def test_kdtutor_cifar10_switch_uses_the_copy_and_never_falls_back(tmp_path, monkeypatch):
    make_folder(tmp_path / "c10", classes=CIFAR10_CLASSES, n=(20, 2), fmt="JPEG")
    monkeypatch.setattr(image_folder, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "c10"))
    profile = get_profile("cpu").with_(n_train=100, n_val=10, n_test=10)
    ds = load_dataset(profile, root=tmp_path / "empty")
    assert ds.name == "CIFAR-10 (JPEG copy)" and not ds.is_standin
    assert (len(ds.train), len(ds.val), len(ds.test)) == (100, 10, 10)
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="KDTUTOR_CIFAR10"):
        load_dataset(profile, root=tmp_path / "empty")
    make_folder(tmp_path / "pets", n=(2, 1))
    monkeypatch.setenv("KDTUTOR_CIFAR10", str(tmp_path / "pets"))
    with pytest.raises(ValueError, match="not CIFAR-10's"):
        load_dataset(profile, root=tmp_path / "empty")


def test_dataset_rejects_labels_beyond_its_classes():
    from kdtutor.images.splits import Dataset, Split

    ok = Split(torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1]))
    bad = Split(torch.zeros(2, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="test labels run from 0 to 9, but there are 2 classes"):
        splits.Dataset("toy", ["a", "b"], ok, ok, bad)
    with pytest.raises(ValueError, match="labels must be 0"):
        Dataset("toy", ["a", "b"], ok, Split(ok.images[:1], torch.tensor([-1])), ok)


def test_write_image_folder_round_trips_exactly_as_png(tmp_path):
    from kdtutor.images.standin import make_standin
    from kdtutor.images.image_folder import write_image_folder

    ds = make_standin(40, 10, 20, seed=1)
    write_image_folder(tmp_path / "out", "train", ds.train.images, ds.train.labels, ds.classes)
    write_image_folder(tmp_path / "out", "test", ds.test.images, ds.test.labels, ds.classes)
    back = load_image_folder(tmp_path / "out", cache_dir=tmp_path / "c", progress=False)
    # the same multiset of (image, class name) pairs: PNG is lossless
    pairs = lambda imgs, labels, classes: sorted((im.numpy().tobytes(), classes[y]) for im, y in zip(imgs, labels.tolist()))  # noqa: E731
    assert pairs(back.test.images, back.test.labels, back.classes) == pairs(ds.test.images, ds.test.labels, ds.classes)
    with pytest.raises(ValueError, match="split must be one of"):
        write_image_folder(tmp_path / "x", "training", ds.test.images, ds.test.labels, ds.classes)


# --------------------------------------------------------------------------- real folders: images of any size
def make_mixed_folder(root: Path, sizes=((20, 12), (9, 15), (16, 16)), classes=("a", "b"), seed=0) -> dict:
    """root/{train,test}/<class>/<i>.png with every image a different (width, height) of ``sizes``."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, count in (("train", 5), ("test", 2)):
        for cls in classes:
            for i in range(count):
                w, h = sizes[(i + len(out)) % len(sizes)]
                rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
                path = root / split / cls / f"{i:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rgb).save(path)
                out[split, cls, i] = rgb
    return out


def test_a_mixed_folder_without_size_says_how_to_pass_it(tmp_path):
    make_mixed_folder(tmp_path / "mixed")
    with pytest.raises(ValueError, match=r"pass a size .*load_image_folder\(path, size=\d+\).*crop=True"):
        load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False)


@pytest.mark.parametrize("crop", [False, True])
def test_size_resizes_or_centre_crops_every_image_as_torchvision_does(tmp_path, crop):
    import torchvision.transforms.functional as TF

    pixels = make_mixed_folder(tmp_path / "mixed")
    ds = load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=8, crop=crop)
    assert ds.image_shape == (3, 8, 8)
    assert ds.name == f"mixed (image folder, {'8×8 centre crops' if crop else 'resized to 8×8'})"
    for i in range(2):  # test images keep file order: class a first
        img = Image.fromarray(pixels["test", "a", i])
        ref = TF.center_crop(TF.resize(img, 8), 8) if crop else TF.resize(img, [8, 8])
        assert torch.equal(ds.test.images[i], torch.from_numpy(np.array(ref)).permute(2, 0, 1))
    other = load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=(6, 10), crop=crop)
    assert other.image_shape == (3, 6, 10)  # another size is decoded again, not taken from the cache
    named = load_image_folder(tmp_path / "mixed", name="mine", cache_dir=tmp_path / "c", progress=False, size=8)
    assert named.name == "mine (resized to 8×8)" and torch.equal(named.test.images, load_image_folder(
        tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=8).test.images)


def test_bad_sizes_and_a_folder_over_the_memory_limit_are_refused(tmp_path):
    make_mixed_folder(tmp_path / "mixed")
    for bad in (0, -3, 2.5, (8,), "64", True):
        with pytest.raises(ValueError, match="size must be"):
            load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=bad)
    with pytest.raises(ValueError, match="crop=True needs a size"):
        load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, crop=True)
    # 14 images × 3 × 16 × 16 = 10,752 bytes decoded
    with pytest.raises(ValueError, match=r"14 images at 16×16 pixels take .* over the limit.*size=15"):
        load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=16,
                          max_dataset_bytes=10_000)
    assert load_image_folder(tmp_path / "mixed", cache_dir=tmp_path / "c", progress=False, size=16,
                             max_dataset_bytes=10_752).image_shape == (3, 16, 16)


def test_export_classes_writes_a_mixed_size_folder_that_loads_back_at_one_size(tmp_path):
    """Lesson 08's own folder: some classes of a data set, each image at its own size, complete or absent."""
    from PIL import Image

    from kdtutor.images.image_folder import export_classes, load_image_folder
    from kdtutor.images.standin import make_standin

    ds = make_standin(60, 10, 30, seed=0)
    keep = [ds.classes[3], ds.classes[1]]
    root = export_classes(ds, tmp_path / "mine", keep, sizes=(24, 48), fmt="png", seed=5)
    sizes = {Image.open(p).size for p in root.rglob("*.png")}
    assert len(sizes) > 5 and all(24 <= w <= 48 and 24 <= h <= 48 for w, h in sizes)
    assert sorted(p.name for p in (root / "train").iterdir()) == sorted(keep)
    assert not list(tmp_path.glob(".mine.partial-*"))
    for split in ("train", "test"):
        part = getattr(ds, split)
        for c in keep:
            n = int((part.labels == ds.classes.index(c)).sum())
            assert len(list((root / split / c).iterdir())) == n
    with pytest.raises(ValueError, match="pass a size|size="):
        load_image_folder(root, cache_dir=tmp_path / "cache", progress=False)
    data = load_image_folder(root, name="two shapes", size=32, cache_dir=tmp_path / "cache", progress=False)
    assert data.image_shape == (3, 32, 32) and data.classes == sorted(keep)
    assert data.name == "two shapes (resized to 32×32)"
    with pytest.raises(FileExistsError, match="exists"):
        export_classes(ds, root, keep)
    with pytest.raises(ValueError, match="at least 2"):
        export_classes(ds, tmp_path / "other", ["not a class", keep[0]])
    with pytest.raises(ValueError, match="sizes must be"):
        export_classes(ds, tmp_path / "other", keep, sizes=(40, 20))
    assert not (tmp_path / "other").exists()
