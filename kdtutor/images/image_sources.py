"""Lesson 03 — reading a folder, ``.tar`` (optionally gzip/bzip2/xz-compressed) or ``.zip`` completely or not at all.

:func:`walk_source` lists everything in the source as :class:`Item` s, in a fixed order;
:mod:`kdtutor.images.image_folder` decides which items are images of which class. The rules:

* **Complete or an error.** A truncated or damaged archive raises :class:`CorruptFileError`
  naming the file. For a tar this includes a cut inside a header, which Python's ``tarfile``
  treats as a normal end: the walk checks that the archive ends with tar's end-of-archive
  (zero) block, and reads a compressed stream to its end so its checksum is verified.
  A zip is read through its central directory; every member read is CRC-checked.
* **Links.** Hard links and symbolic links *inside a tar* are followed to their target within
  the archive, never to the disk; one whose target is not a file of the archive is skipped
  (with a note). In a folder, symbolic links (also to folders) are followed, each real folder
  once. A symbolic link stored in a zip is skipped (zip has no portable links).
* **Special files** (FIFOs, devices, sockets) are skipped with a note and never opened.
* **Size cap.** A member is read only when asked, and at most :func:`member_cap` bytes
  (default 64 MiB; raise it with ``KDTUTOR_MAX_MEMBER_BYTES=<bytes>`` or the
  ``max_member_bytes`` argument); a bigger one is an error naming it.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import os
import posixpath
import stat
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from kdtutor.storage import CorruptFileError

MAX_MEMBER_BYTES_ENV = "KDTUTOR_MAX_MEMBER_BYTES"
DEFAULT_MAX_MEMBER_BYTES = 64 * 2**20
ARCHIVE_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile,
                  OSError, RuntimeError, NotImplementedError)  # RuntimeError: an encrypted zip member
_COMPRESSED = {b"\x1f\x8b": lambda f: gzip.GzipFile(fileobj=f), b"BZh": bz2.BZ2File,
               b"\xfd7zXZ\x00": lzma.LZMAFile}  # magic bytes → a reader of the decompressed stream
_ARCHIVE_SUFFIXES = {".zip": "zip", ".tar": "tar", ".tgz": "tar", ".gz": "tar", ".bz2": "tar", ".xz": "tar",
                     ".tbz2": "tar", ".txz": "tar"}


@dataclass
class Item:
    """One entry of a source: its path inside it (posix, no trailing slash), what it is, and its size.

    ``kind`` is ``"dir"``, ``"file"`` or the reason it is not read (``"special file …"``,
    ``"link …"``). ``read(cap)`` returns a file's bytes (at most ``cap``, else a ValueError naming it);
    for a tar it must be called before the walk moves on.
    """

    rel: str
    kind: str
    size: int = 0
    read: callable = None


def member_cap(value: int | None = None) -> int:
    """The per-file size cap in bytes: ``value`` if given, else ``$KDTUTOR_MAX_MEMBER_BYTES``, else 64 MiB."""
    return _positive_setting(value, MAX_MEMBER_BYTES_ENV, DEFAULT_MAX_MEMBER_BYTES)


def _positive_setting(value, env: str, default: int) -> int:
    if value is None:
        text = os.environ.get(env, "").strip()
        if not text:
            return default
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise ValueError(f"{env}={text!r} is not a whole number") from None
        if value < 1:
            raise ValueError(f"{env}={text!r} must be at least 1")
        return value
    if int(value) < 1:
        raise ValueError(f"the limit must be at least 1, got {value}")
    return int(value)


def too_large(source: Path, rel: str, size: int, cap: int) -> ValueError:
    return ValueError(f"{source}: {rel} is {size:,} bytes, over the limit of {cap:,} bytes for one image file; "
                      f"if it really is an image, raise the limit ({MAX_MEMBER_BYTES_ENV}=<bytes> or "
                      f"max_member_bytes=…)")


def _read_capped(f, source: Path, rel: str, size: int, cap: int) -> bytes:
    if size > cap:
        raise too_large(source, rel, size, cap)
    data = f.read(size + 1)  # one byte more than declared: a file that grew is caught below
    if len(data) > size:
        raise ValueError(f"{source}: {rel} grew while it was read (it was {size:,} bytes); try again when "
                         f"nothing is writing to it")
    return data


# --------------------------------------------------------------------------- what the source is
def source_kind(path: Path) -> str:
    """``"folder"``, ``"tar"`` or ``"zip"``, from the first bytes (else the name); a clear error for anything else.

    A file named like an archive that does not read as one (say, a cut download) is reported
    as a damaged archive, not as "not an archive".
    """
    if not path.exists():
        raise FileNotFoundError(f"no image folder or archive at {path}")
    if path.is_dir():
        return "folder"
    if not path.is_file():
        raise ValueError(f"{path} is a special file (FIFO, device or socket), not a folder or archive")
    with open(path, "rb") as f:
        head = f.read(512)
    if head[257:262] == b"ustar" or any(head.startswith(m) for m in _COMPRESSED):
        return "tar"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return "zip"
    name = path.name.lower()
    by_name = next((k for s, k in _ARCHIVE_SUFFIXES.items() if name.endswith(s)), None)
    if by_name or tarfile.is_tarfile(path):  # v7 tars have no magic; is_tarfile reads one header
        return by_name or "tar"
    raise ValueError(f"{path} is neither a folder nor a .tar, .tar.gz or .zip archive")


# --------------------------------------------------------------------------- folders
def walk_folder(path: Path):
    """Every folder and file below ``path`` (links followed, each real folder once), sorted."""
    seen = set()

    def fail(err: OSError):
        raise err

    for dirpath, dirnames, filenames in os.walk(path, followlinks=True, onerror=fail):
        rel_dir = Path(dirpath).relative_to(path).as_posix()
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames.clear()
            yield Item(rel_dir, "link to a folder already read (a loop or a second link): not read twice")
            continue
        seen.add(real)
        dirnames.sort()
        for d in dirnames:
            yield Item(Path(dirpath, d).relative_to(path).as_posix(), "dir")
        for f in sorted(filenames):
            yield _folder_file(path, Path(dirpath, f))


def _folder_file(root: Path, full: Path) -> Item:
    rel = full.relative_to(root).as_posix()
    try:
        st = full.stat()  # follows a link; never opens the file
    except FileNotFoundError:
        return Item(rel, "broken link")
    if not stat.S_ISREG(st.st_mode):
        return Item(rel, "special file (FIFO, device or socket): not opened")

    def read(cap: int) -> bytes:
        with open(full, "rb") as f:
            return _read_capped(f, root, rel, st.st_size, cap)

    return Item(rel, "file", st.st_size, read)


# --------------------------------------------------------------------------- tar
class _EndAwareTarInfo(tarfile.TarInfo):
    """A TarInfo that notes where tar's end-of-archive (an all-zero block) was read, so a walk can tell
    a real end from ``tarfile``'s quiet stop at a cut or garbled header."""

    @classmethod
    def fromtarfile(cls, tar):
        try:
            return super().fromtarfile(tar)
        except tarfile.EOFHeaderError:
            tar.kdtutor_end_block = tar.fileobj.tell() - tarfile.BLOCKSIZE
            raise


def walk_tar(path: Path):
    """Every member of the tar at ``path`` (plain or compressed), in archive order, then a check that it
    is complete; a truncated or damaged one raises :class:`CorruptFileError`."""
    with open(path, "rb") as raw:
        head = raw.read(6)
        raw.seek(0)
        opener = next((o for m, o in _COMPRESSED.items() if head.startswith(m)), None)
        stream = opener(raw) if opener else raw
        try:
            with tarfile.open(fileobj=stream, mode="r:", tarinfo=_EndAwareTarInfo) as tar:
                seen, read_so_far = {}, {}
                for m in tar:
                    yield _tar_item(path, tar, m, seen, read_so_far)
                if getattr(tar, "kdtutor_end_block", None) != tar.offset:
                    raise CorruptFileError(
                        f"{path} ends at byte {tar.offset:,} of its tar data without tar's end-of-archive block: "
                        f"it is truncated or damaged (only {len(tar.members)} members could be read). "
                        f"Copy or download it again, or re-create it (e.g. tar czf)")
                if opener:  # read the compressed stream to its end: verifies its length and checksum
                    while stream.read(1 << 20):
                        pass
        except CorruptFileError:
            raise
        except ARCHIVE_ERRORS as e:
            raise CorruptFileError(f"cannot read the archive {path} ({type(e).__name__}: {e}): it is truncated or "
                                   f"damaged; copy or download it again") from e


def _tar_item(source: Path, tar: tarfile.TarFile, m: tarfile.TarInfo, seen: dict, read_so_far: dict) -> Item:
    """The :class:`Item` of member ``m``; ``seen`` maps the (normalised) names of the members so far to
    themselves (hard links point back at one), ``read_so_far`` maps members to their bytes once read."""
    rel = m.name.rstrip("/")
    seen[_norm(m.name)] = m
    if m.isdir():
        return Item(rel, "dir")
    if m.ischr() or m.isblk() or m.isfifo():
        return Item(rel, "special file (FIFO or device): not opened")
    target = m
    if m.islnk():
        target = seen.get(_norm(m.linkname))
    elif m.issym():
        try:
            target = tar._find_link_target(m)  # resolved inside the archive only, never on the disk
        except KeyError:
            target = None
    if target is None:
        return Item(rel, "link to something that is not in the archive")
    if not target.isfile():
        return Item(rel, "link to something that is not a file" if target is not m else "not a regular file")

    def read(cap: int) -> bytes:
        if target not in read_so_far:  # keyed by the member itself
            if target.size > cap:
                raise too_large(source, rel, target.size, cap)
            try:
                data = tar.extractfile(target).read()  # at most target.size bytes: tarfile stops there
            except ARCHIVE_ERRORS as e:
                raise _damaged_member(source, rel, e) from e
            if len(data) != target.size:
                raise CorruptFileError(f"{source}: {rel} is cut short ({len(data):,} of {target.size:,} bytes): "
                                       f"the archive is truncated or damaged; copy or download it again")
            read_so_far[target] = data
        return read_so_far[target]

    return Item(rel, "file", target.size, read)


def _norm(name: str) -> str:
    return posixpath.normpath(name.lstrip("/"))


def _damaged_member(source: Path, rel: str, e: Exception) -> CorruptFileError:
    """The error for a failed read of member ``rel``, naming the archive and the member."""
    return CorruptFileError(f"cannot read {rel} from {source} ({type(e).__name__}: {e}): the archive is "
                            f"truncated or damaged; copy or download it again")


# --------------------------------------------------------------------------- zip
def walk_zip(path: Path):
    """Every member of the zip at ``path``, in archive order; a damaged one raises :class:`CorruptFileError`."""
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                yield _zip_item(path, zf, info)
    except CorruptFileError:
        raise
    except ARCHIVE_ERRORS as e:
        raise CorruptFileError(f"cannot read the archive {path} ({type(e).__name__}: {e}): it is truncated or "
                               f"damaged; copy or download it again") from e


def _zip_item(source: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Item:
    rel = info.filename.replace("\\", "/").rstrip("/")  # some Windows tools write backslashes
    if info.is_dir():
        return Item(rel, "dir")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        return Item(rel, "symbolic link stored in a zip: not followed")
    if mode and not stat.S_ISREG(mode) and stat.S_IFMT(mode):
        return Item(rel, "special file (FIFO or device): not opened")

    def read(cap: int) -> bytes:
        try:
            with zf.open(info) as f:
                return _read_capped(f, source, rel, info.file_size, cap)
        except ARCHIVE_ERRORS as e:
            raise _damaged_member(source, rel, e) from e

    return Item(rel, "file", info.file_size, read)


def walk_source(path: Path, kind: str):
    """The items of a source of ``kind`` (:func:`source_kind`)."""
    return {"folder": walk_folder, "tar": walk_tar, "zip": walk_zip}[kind](path)
