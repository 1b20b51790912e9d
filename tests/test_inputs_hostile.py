"""Image folders and archives as users have them (issue 23): read completely or not at all, nothing
dropped without a word, limits a user can raise, caches keyed by content and kept under KDTUTOR_DATA.

Every archive and folder here is tiny and built in tmp_path."""

import io
import os
import shutil
import signal
import tarfile
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from test_image_folder import make_folder

from kdtutor.images import cifar10, image_folder
from kdtutor.images.cifar10 import CIFAR10_CLASSES
from kdtutor.images.data import load_cifar10_copy
from kdtutor.images.image_folder import SkippedFiles, load_image_folder, read_image_folder
from kdtutor.storage import CorruptFileError, save_checked


def load(path, tmp_path, **kw):
    return load_image_folder(path, cache_dir=tmp_path / "cache", progress=False, **kw)


def n_images(ds) -> int:
    return len(ds.train) + len(ds.val) + len(ds.test)


def png_bytes(seed=0, size=8) -> bytes:
    buf = io.BytesIO()
    rgb = np.random.default_rng(seed).integers(0, 256, size=(size, size, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def add_bytes(tar: tarfile.TarFile, name: str, data: bytes, **fields) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in fields.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data))


def tar_of(folder: Path, archive: Path, mode="w") -> Path:
    with tarfile.open(archive, mode) as tar:
        tar.add(folder, arcname=folder.name)
    return archive


# --------------------------------------------------------------------------- truncated and damaged archives
def member_header_offsets(archive: Path) -> list[int]:
    with tarfile.open(archive) as tar:
        return [m.offset for m in tar.getmembers()]


def test_a_plain_tar_cut_inside_any_header_is_refused_not_loaded_smaller(tmp_path):
    make_folder(tmp_path / "d", n=(5, 2))
    archive = tar_of(tmp_path / "d", tmp_path / "d.tar")
    full = archive.read_bytes()
    cut = tmp_path / "cut.tar"
    offsets = member_header_offsets(archive)[1:]
    assert len(offsets) > 10
    for offset in offsets:  # inside the header of each member after the first: tarfile stops quietly there
        cut.write_bytes(full[:offset + 100])
        with pytest.raises(CorruptFileError, match=r"cut\.tar .*(truncated|damaged)"):
            load(cut, tmp_path)
    cut.write_bytes(full[:offsets[-1]])  # cut exactly between two members: no end-of-archive block
    with pytest.raises(CorruptFileError, match="end-of-archive"):
        load(cut, tmp_path)


def test_a_cut_cifar10_copy_is_refused_naming_kdtutor_cifar10(tmp_path, monkeypatch):
    monkeypatch.setattr(image_folder, "CACHE_DIR", tmp_path / "cache")
    make_folder(tmp_path / "c10", classes=CIFAR10_CLASSES, n=(2, 1))
    full = tar_of(tmp_path / "c10", tmp_path / "c10.tar").read_bytes()
    last = member_header_offsets(tmp_path / "c10.tar")[-1]
    (tmp_path / "cut.tar").write_bytes(full[:last + 10])  # the last test image's header: still ten classes
    with pytest.raises(CorruptFileError, match=r"KDTUTOR_CIFAR10=.*cut\.tar.*truncated"):
        load_cifar10_copy(tmp_path / "cut.tar", progress=False)


@pytest.mark.parametrize("mode, suffix", [("w:gz", "tar.gz"), ("w:bz2", "tar.bz2"), ("w:xz", "tar.xz")])
@pytest.mark.parametrize("keep", [0.5, 0.999])
def test_a_cut_compressed_tar_is_refused_even_when_only_its_trailer_is_missing(tmp_path, mode, suffix, keep):
    make_folder(tmp_path / "d", n=(5, 2))
    full = tar_of(tmp_path / "d", tmp_path / f"d.{suffix}", mode).read_bytes()
    cut = tmp_path / f"cut.{suffix}"
    cut.write_bytes(full[:int(len(full) * keep)])  # 0.999: the tar data are whole, the stream's end is not
    with pytest.raises(CorruptFileError, match=rf"cut\.{suffix}.*(truncated|damaged)"):
        load(cut, tmp_path)


def zip_of(folder: Path, archive: Path, dirs: bool = True) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.rglob("*")):
            if f.is_file() or dirs:
                zf.write(f, f.relative_to(folder.parent).as_posix())
    return archive


def test_a_truncated_zip_is_called_damaged_not_not_an_archive(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    full = zip_of(tmp_path / "d", tmp_path / "d.zip").read_bytes()
    (tmp_path / "cut.zip").write_bytes(full[: len(full) // 2])
    with pytest.raises(CorruptFileError, match=r"cut\.zip .*truncated or damaged"):
        load(tmp_path / "cut.zip", tmp_path)


def test_a_damaged_zip_member_is_named(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    with zipfile.ZipFile(tmp_path / "d.zip", "w", zipfile.ZIP_STORED) as zf:
        for f in sorted((tmp_path / "d").rglob("*.png")):
            zf.write(f, f.relative_to(tmp_path).as_posix())
    raw = bytearray((tmp_path / "d.zip").read_bytes())
    with zipfile.ZipFile(tmp_path / "d.zip") as zf:
        victim = zf.infolist()[2]
    start = victim.header_offset + 30 + len(victim.filename)
    raw[start + 40] ^= 0xFF  # one bit flipped in its data: the CRC no longer matches
    (tmp_path / "d.zip").write_bytes(bytes(raw))
    with pytest.raises(CorruptFileError, match=rf"{victim.filename}.*d\.zip.*damaged"):
        load(tmp_path / "d.zip", tmp_path)


# --------------------------------------------------------------------------- nothing dropped without a word
def test_hard_links_in_a_tar_are_followed_within_the_archive(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    folder = load(tmp_path / "d", tmp_path)
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "d", arcname="d")
        for cls in ("cat", "dog"):  # GNU tar stores a repeated file as a hard link to its first copy
            info = tarfile.TarInfo(f"d/train/{cls}/copy.png")
            info.type, info.linkname = tarfile.LNKTYPE, f"d/train/{cls}/0000.png"
            tar.addfile(info)
    ds = load(archive, tmp_path)
    assert len(ds.train) + len(ds.val) == len(folder.train) + len(folder.val) + 2


def test_symbolic_links_in_a_tar_stay_inside_the_archive(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    (tmp_path / "secret.png").write_bytes(png_bytes(5))
    archive = tmp_path / "sym.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(tmp_path / "d", arcname="d")
        for name, target in (("d/train/cat/inside.png", "0000.png"), ("d/train/cat/outside.png", "../../../secret.png")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    with pytest.warns(SkippedFiles, match=r"1 × link to something that is not in the archive .*outside\.png"):
        ds = load(archive, tmp_path)
    assert len(ds.train) + len(ds.val) == 6 + 1  # inside.png loaded, outside.png never read from the disk


def test_images_in_nested_folders_load_as_their_class(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    (tmp_path / "d/train/cat/indoor/sofa").mkdir(parents=True)
    for i in range(4):
        (tmp_path / f"d/train/cat/indoor/sofa/{i}.png").write_bytes(png_bytes(10 + i))
    ds = load(tmp_path / "d", tmp_path)
    labels = torch.cat([ds.train.labels, ds.val.labels])
    assert (labels == ds.classes.index("cat")).sum() == 3 + 4 and ds.classes == ["cat", "dog"]


@pytest.mark.parametrize("fmt, suffix, lossless", [("BMP", "bmp", True), ("WEBP", "webp", True), ("GIF", "gif", False),
                                                   ("TIFF", "tif", True), ("TIFF", "TIFF", True), ("JPEG", "jpeg", False)])
def test_bmp_webp_gif_and_tiff_images_are_loaded(tmp_path, fmt, suffix, lossless):
    make_folder(tmp_path / "d", n=(3, 1))
    rgb = np.random.default_rng(7).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    extra = {"lossless": True} if fmt == "WEBP" else {}
    Image.fromarray(rgb).save(tmp_path / f"d/test/cat/extra.{suffix}", format=fmt, **extra)
    ds = load(tmp_path / "d", tmp_path)
    assert len(ds.test) == 3
    got = ds.test.images[ds.test.labels == 0][1]  # cat's images sorted by name: 0000.png, extra.*
    if lossless:
        assert torch.equal(got, torch.from_numpy(rgb).permute(2, 0, 1))
    assert fmt.replace("WEBP", "WebP") in ds.name or ds.name == "d (image folder)"


def test_a_zip_without_folder_entries_does_not_lose_a_class_of_unreadable_files(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    (tmp_path / "d/train/owl").mkdir()
    for i in range(3):
        (tmp_path / f"d/train/owl/{i}.heic").write_bytes(b"not a format Pillow reads")
    zip_of(tmp_path / "d", tmp_path / "d.zip", dirs=False)
    with pytest.raises(ValueError, match=r"train/owl/ has no images it can load .*3 × not an image by its "
                                         r"extension \(\.heic\)"):
        load(tmp_path / "d.zip", tmp_path)


def test_a_zip_written_with_backslashes_loads_like_the_folder(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    with zipfile.ZipFile(tmp_path / "win.zip", "w") as zf:
        for f in sorted((tmp_path / "d").rglob("*.png")):
            zf.writestr(str(f.relative_to(tmp_path)).replace("/", "\\"), f.read_bytes())
    assert n_images(load(tmp_path / "win.zip", tmp_path)) == n_images(load(tmp_path / "d", tmp_path)) == 8


def test_every_file_not_loaded_is_listed_in_one_warning_by_reason(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    (tmp_path / "d/train/cat/notes.txt").write_text("where I found them")
    (tmp_path / "d/train/dog/labels.json").write_text("{}")
    (tmp_path / "d/test/cat/.DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / "d/train/loose.png").write_bytes(png_bytes())
    (tmp_path / "d/README.md").write_text("outside the split folders: not ours to report")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load(tmp_path / "d", tmp_path)
        load(tmp_path / "d", tmp_path)  # the cached load says it again
    messages = [str(w.message) for w in caught if issubclass(w.category, SkippedFiles)]
    assert len(messages) == 2 and messages[0] == messages[1]
    msg = messages[0]
    assert "4 file(s)" in msg and "README" not in msg
    assert msg.startswith(f"{tmp_path / 'd'}: 4 file(s)")
    assert "1 × not an image by its extension (.txt) (e.g. train/cat/notes.txt)" in msg
    for part in ("(.json)", "hidden file", "not inside a class folder", "train/loose.png", ".bmp"):
        assert part in msg
    assert n_images(ds) == 8


def alarm(seconds):
    """Fail a test (instead of hanging it) if it runs longer than ``seconds``."""
    def hang(*_):
        raise TimeoutError(f"still running after {seconds} s: a special file was opened")
    signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)


def test_a_fifo_named_like_an_image_is_skipped_with_a_note_never_opened(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    os.mkfifo(tmp_path / "d/train/cat/x.png")
    alarm(20)
    try:
        with pytest.warns(SkippedFiles, match=r"special file \(FIFO, device or socket\): not opened .*x\.png"):
            ds = load(tmp_path / "d", tmp_path)
    finally:
        signal.alarm(0)
    assert n_images(ds) == 8


def test_special_members_of_a_tar_are_skipped_with_a_note(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    with tarfile.open(tmp_path / "d.tar", "w") as tar:
        tar.add(tmp_path / "d", arcname="d")
        for name, kind in (("d/train/cat/pipe.png", tarfile.FIFOTYPE), ("d/train/dog/tty.png", tarfile.CHRTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
    with pytest.warns(SkippedFiles, match=r"2 × special file \(FIFO or device\): not opened"):
        assert n_images(load(tmp_path / "d.tar", tmp_path)) == 8


def test_a_symlinked_class_folder_is_loaded(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    make_folder(tmp_path / "elsewhere", classes=("owl",), n=(4, 0), seed=3)
    (tmp_path / "d/train/owl").symlink_to(tmp_path / "elsewhere/train/owl", target_is_directory=True)
    ds = load(tmp_path / "d", tmp_path)
    assert ds.classes == ["cat", "dog", "owl"] and (torch.cat([ds.train.labels, ds.val.labels]) == 2).sum() == 4


# --------------------------------------------------------------------------- limits a user can raise
def test_a_member_over_the_size_cap_is_refused_by_name_and_the_cap_can_be_raised(tmp_path, monkeypatch):
    make_folder(tmp_path / "d", n=(3, 1), size=64)
    size = max(f.stat().st_size for f in (tmp_path / "d").rglob("*.png"))
    zip_of(tmp_path / "d", tmp_path / "d.zip")
    monkeypatch.setenv("KDTUTOR_MAX_MEMBER_BYTES", str(size - 1))
    with pytest.raises(ValueError, match=rf"d\.zip: d/.*\.png is {size:,} bytes, over the limit of {size - 1:,} "
                                         r"bytes .*KDTUTOR_MAX_MEMBER_BYTES"):
        load(tmp_path / "d.zip", tmp_path)
    with pytest.raises(ValueError, match=r"\.png is .* over the limit"):  # the folder reader has the same cap
        load(tmp_path / "d", tmp_path)
    monkeypatch.setenv("KDTUTOR_MAX_MEMBER_BYTES", "10_000_000")
    assert n_images(load(tmp_path / "d.zip", tmp_path)) == 8
    monkeypatch.setenv("KDTUTOR_MAX_MEMBER_BYTES", "lots")
    with pytest.raises(ValueError, match="KDTUTOR_MAX_MEMBER_BYTES='lots' is not a whole number"):
        load(tmp_path / "d.zip", tmp_path / "other")


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_a_small_archive_of_non_images_does_not_make_the_loader_read_them(tmp_path, kind):
    make_folder(tmp_path / "d", n=(3, 1))
    archive = tmp_path / f"d.{kind}"
    zeros = bytes(60 * 2**20)  # 60 MB that compress to ~60 kB
    if kind == "zip":
        zip_of(tmp_path / "d", archive)
        with zipfile.ZipFile(archive, "a", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("d/train/cat/video.mp4", zeros)
            zf.writestr("d/extras/dump.bin", zeros)
    else:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(tmp_path / "d", arcname="d")
            add_bytes(tar, "d/train/cat/video.mp4", zeros)
            add_bytes(tar, "d/extras/dump.bin", zeros)
    assert archive.stat().st_size < 2**20
    del zeros
    tracemalloc.start()
    try:
        with pytest.warns(SkippedFiles, match="video.mp4"):
            ds = read_image_folder(archive, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(ds["train_images"]) == 6 and peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB"


def fake_png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` pixels (its data is not there)."""
    import struct

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">I", len(data)) + kind + data  # noqa: E731
                                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_an_image_over_the_pixel_cap_is_refused_by_name_not_a_pillow_bomb_error(tmp_path, monkeypatch):
    make_folder(tmp_path / "d", n=(3, 1))
    (tmp_path / "d/train/dog/huge.png").write_bytes(fake_png_header(20000, 20000))
    with pytest.raises(ValueError, match=r"huge\.png is 20000×20000 = 400,000,000 pixels, over the limit .*"
                                         r"KDTUTOR_MAX_PIXELS"):
        load(tmp_path / "d", tmp_path)
    (tmp_path / "d/train/dog/huge.png").unlink()
    monkeypatch.setenv("KDTUTOR_MAX_PIXELS", "63")
    with pytest.raises(ValueError, match=r"is 8×8 = 64 pixels, over the limit of 63"):
        load(tmp_path / "d", tmp_path)
    assert n_images(load(tmp_path / "d", tmp_path, max_pixels=64)) == 8  # an argument raises it too


# --------------------------------------------------------------------------- too small
def test_too_few_training_images_without_val_say_how_many_each_split_needs(tmp_path):
    make_folder(tmp_path / "d", classes=("cat",), n=(1, 1))
    with pytest.raises(ValueError, match=r"1 training image\(s\) and no val/ folder.*at least 2 images and test/ at "
                                         r"least 1"):
        load(tmp_path / "d", tmp_path)


def test_an_empty_split_gives_a_clear_error_not_a_torch_cat_crash():
    from kdtutor.images.loader import DeviceLoader
    from kdtutor.images.splits import Split
    from kdtutor.images.predict import predict, split_metrics

    empty = Split(torch.zeros(0, 3, 8, 8, dtype=torch.uint8), torch.zeros(0, dtype=torch.int64))
    loader = DeviceLoader(empty, batch_size=4, mean=(0.5,) * 3, std=(0.25,) * 3, device="cpu")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    for fn in (predict, split_metrics):
        with pytest.raises(ValueError, match="needs at least one image"):
            fn(model, loader)


# --------------------------------------------------------------------------- caches keyed by content
def test_an_image_replaced_with_one_of_the_same_size_and_time_stamp_is_read_again(tmp_path):
    make_folder(tmp_path / "d", n=(3, 1))
    target = tmp_path / "d/test/cat/0000.png"
    first = load(tmp_path / "d", tmp_path)
    st = target.stat()
    rgb = np.zeros((8, 8, 3), np.uint8)
    for seed in range(200):  # a different image whose PNG has exactly the same number of bytes
        rgb = np.random.default_rng(100 + seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, format="PNG")
        if len(buf.getvalue()) == st.st_size:
            break
    assert len(buf.getvalue()) == st.st_size
    target.write_bytes(buf.getvalue())
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_mtime_ns == st.st_mtime_ns and target.stat().st_size == st.st_size
    again = load(tmp_path / "d", tmp_path)
    assert not torch.equal(again.test.images[0], first.test.images[0])
    assert torch.equal(again.test.images[0], torch.from_numpy(rgb).permute(2, 0, 1))


def test_a_cache_file_made_from_another_source_is_not_trusted(tmp_path):
    make_folder(tmp_path / "a", n=(3, 1), seed=1)
    make_folder(tmp_path / "b", n=(3, 1), seed=2)
    load(tmp_path / "a", tmp_path)
    (cache_a,) = (tmp_path / "cache").glob("a-*.pt")
    b = load(tmp_path / "b", tmp_path)
    (cache_b,) = (tmp_path / "cache").glob("b-*.pt")
    shutil.copy(cache_a, cache_b)  # a stray copy under b's name
    with pytest.warns(UserWarning, match="not made from this source"):
        again = load(tmp_path / "b", tmp_path)
    assert torch.equal(again.test.images, b.test.images)


def write_official_like(path: Path, n: int = 20) -> dict:
    from test_data import write_fake_cifar

    return write_fake_cifar(path, n_per_batch=n)


def test_an_official_archive_of_the_users_is_cached_under_kdtutor_data_never_beside_it(tmp_path, monkeypatch):
    from test_data import md5

    shared = tmp_path / "shared"
    shared.mkdir()
    archive = shared / cifar10.CIFAR10_ARCHIVE
    batches = write_official_like(archive)
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5(archive))
    monkeypatch.setattr(cifar10, "DATA_DIR", tmp_path / "kd_data")
    # a cache someone left beside the archive, with other pixels: never read
    fake = {k: torch.zeros_like(v) if k.endswith("images") else v for k, v in cifar10.parse_cifar_archive(archive).items()}
    save_checked(fake, shared / cifar10.CIFAR10_CACHE, kind="cifar10")
    before = sorted(p.name for p in shared.iterdir())
    ds = load_cifar10_copy(archive, progress=False)
    assert sorted(p.name for p in shared.iterdir()) == before  # nothing written beside the user's archive
    assert list((tmp_path / "kd_data").rglob("*.pt")), "the cache goes under KDTUTOR_DATA"
    want = torch.as_tensor(batches["test_batch"][b"data"]).reshape(-1, 3, 32, 32)
    assert torch.equal(ds.test.images, want)
    again = load_cifar10_copy(archive, progress=False)  # from the KDTUTOR_DATA cache, archive re-verified
    assert torch.equal(again.test.images, want)
    archive.write_bytes(archive.read_bytes()[:-100])
    with pytest.raises(CorruptFileError, match=r"KDTUTOR_CIFAR10=.*truncated, damaged or not the official"):
        load_cifar10_copy(archive, progress=False)
