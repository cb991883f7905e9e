"""Safe unpacking of an uploaded image-folder archive (zip).

An upload is untrusted: it may be a zip bomb, name files outside the target folder (``../x``,
absolute paths, symlinks), or carry files that are not images. Everything is checked from the
archive's directory first (cheap), then while inflating (declared sizes can lie), and the result
is written into a fresh temporary folder beside the destination that replaces the destination only
when every file passed; on any failure nothing is left behind and the old folder is untouched.
"""

from __future__ import annotations

import io
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
METADATA_NAMES = {"metadata.jsonl", "metadata.csv"}
_CHUNK = 1 << 16


class UploadRejected(ValueError):
    """The archive is unsafe or not an image folder; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class UploadLimits:
    max_files: int
    max_unpacked_bytes: int
    max_ratio: float  # uncompressed / compressed size of one member: bombs reach 1000x and more


def _safe_member_path(name: str) -> PurePosixPath:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UploadRejected(422, f"archive member {name!r} has an absolute or non-POSIX path")
    path = PurePosixPath(name)
    if any(part in ("..", "") for part in path.parts) or not path.parts:
        raise UploadRejected(422, f"archive member {name!r} escapes the dataset folder")
    return path


def _strip_common_root(paths: list[PurePosixPath]) -> int:
    """Archives made by zipping a folder put everything under one top folder: drop it."""
    if paths and all(len(p.parts) > 1 for p in paths) and len({p.parts[0] for p in paths}) == 1:
        return 1
    return 0


def _check_image(data: bytes, name: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise UploadRejected(422, f"{name!r} is not a readable image ({exc.__class__.__name__})") from exc


def extract_image_archive(content: bytes, dest: Path, limits: UploadLimits) -> list[str]:
    """Unpack zip `content` into `dest` (replacing it) after checking every member; returns the file names."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as exc:
        raise UploadRejected(415, "the upload is not a zip archive") from exc
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if not members:
            raise UploadRejected(422, "the archive holds no files")
        if len(members) > limits.max_files:
            raise UploadRejected(413, f"the archive holds {len(members)} files; the limit is {limits.max_files}")
        declared = sum(m.file_size for m in members)
        if declared > limits.max_unpacked_bytes:
            raise UploadRejected(413, f"the archive unpacks to {declared} bytes; the limit is {limits.max_unpacked_bytes}")
        paths = []
        for m in members:
            path = _safe_member_path(m.filename)
            mode = m.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise UploadRejected(422, f"archive member {m.filename!r} is a symbolic link")
            if m.flag_bits & 0x1:
                raise UploadRejected(422, f"archive member {m.filename!r} is encrypted")
            if m.file_size > limits.max_ratio * max(m.compress_size, 1) and m.file_size > _CHUNK:
                raise UploadRejected(413, f"archive member {m.filename!r} is compressed {m.file_size / max(m.compress_size, 1):.0f}x: "
                                          "refusing a likely zip bomb")
            paths.append(path)
        drop = _strip_common_root(paths)
        rel = [PurePosixPath(*p.parts[drop:]) for p in paths]
        if len(set(rel)) != len(rel):
            raise UploadRejected(422, "the archive names a file twice")
        others = [str(p) for p in rel if not p.name.startswith(".") and p.suffix.lower() not in IMAGE_SUFFIXES
                  and p.name not in METADATA_NAMES]
        if others:
            raise UploadRejected(415, f"only images and metadata.jsonl/metadata.csv are accepted; found {others[:5]}")
        if not any(p.name in METADATA_NAMES for p in rel):
            raise UploadRejected(422, "the archive has no metadata.jsonl or metadata.csv with file_name and text")

        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-upload-", dir=dest.parent))
        try:
            written = 0
            names = []
            for member, path in zip(members, rel):
                if path.name.startswith("."):
                    continue  # editor and OS droppings (.DS_Store): skip rather than refuse
                target = staging.joinpath(*path.parts)
                if staging.resolve() not in target.resolve().parents:
                    raise UploadRejected(422, f"archive member {member.filename!r} escapes the dataset folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                buf = io.BytesIO()
                with archive.open(member) as src:
                    while chunk := src.read(_CHUNK):
                        written += len(chunk)
                        if written > limits.max_unpacked_bytes:  # declared sizes can lie
                            raise UploadRejected(413, f"the archive unpacks to more than {limits.max_unpacked_bytes} bytes")
                        buf.write(chunk)
                data = buf.getvalue()
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    _check_image(data, str(path))
                target.write_bytes(data)
                names.append(str(path))
            if dest.exists():
                old = dest.with_name(f".{dest.name}-old")
                shutil.rmtree(old, ignore_errors=True)
                dest.rename(old)
                staging.rename(dest)
                shutil.rmtree(old, ignore_errors=True)
            else:
                staging.rename(dest)
            return names
        except zipfile.BadZipFile as exc:
            raise UploadRejected(422, f"the archive is corrupt: {exc}") from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)
