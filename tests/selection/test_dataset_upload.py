"""Dataset archive uploads: a good image folder lands; bombs, traversal, links and non-images get a 4xx
and write nothing outside (or, on failure, inside) the dataset's folder."""

from __future__ import annotations

import io
import json
import stat
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from services.common.settings import get_settings
from services.common.uploads import UploadLimits, UploadRejected, extract_image_archive

LIMITS = UploadLimits(max_files=50, max_unpacked_bytes=5_000_000, max_ratio=200.0)


def _png(seed: int = 0) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None, root: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(root + name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(root + name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, target)
    return buf.getvalue()


def _image_folder(n: int = 3) -> dict[str, bytes]:
    files = {f"{i}.png": _png(i) for i in range(n)}
    files["metadata.jsonl"] = "\n".join(json.dumps({"file_name": f"{i}.png", "text": f"noise {i}"})
                                        for i in range(n)).encode()
    return files


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def test_extracts_an_image_folder_and_strips_a_common_top_folder(tmp_path):
    names = extract_image_archive(_zip(_image_folder(), root="my-set/"), tmp_path / "ds", LIMITS)
    assert sorted(names) == ["0.png", "1.png", "2.png", "metadata.jsonl"]
    assert _tree(tmp_path) == {"ds", "ds/0.png", "ds/1.png", "ds/2.png", "ds/metadata.jsonl"}


@pytest.mark.parametrize(("members", "symlinks", "status"), [
    ({"../evil.png": _png(), "metadata.jsonl": b"{}"}, None, 422),
    ({"/abs.png": _png(), "metadata.jsonl": b"{}"}, None, 422),
    ({"a\\..\\..\\evil.png": _png(), "metadata.jsonl": b"{}"}, None, 422),
    ({"0.png": _png(), "metadata.jsonl": b"{}"}, {"link.png": "/etc/passwd"}, 422),
    ({"0.png": _png(), "metadata.jsonl": b"{}", "run.sh": b"rm -rf /"}, None, 415),
    ({"0.png": b"not an image at all", "metadata.jsonl": b"{}"}, None, 422),
    ({"0.png": _png()}, None, 422),  # no captions
    ({"bomb.png": b"\0" * 3_000_000, "metadata.jsonl": b"{}"}, None, 413),  # ~1000x compression
    ({f"{i}.png": _png(i) for i in range(60)} | {"metadata.jsonl": b"{}"}, None, 413),  # too many files
])
def test_unsafe_archives_are_refused_and_leave_nothing(tmp_path, members, symlinks, status):
    with pytest.raises(UploadRejected) as err:
        extract_image_archive(_zip(members, symlinks=symlinks), tmp_path / "ds", LIMITS)
    assert err.value.status == status
    assert _tree(tmp_path) == set()


def test_lying_declared_sizes_are_caught_while_inflating(tmp_path):
    small = UploadLimits(max_files=50, max_unpacked_bytes=10_000, max_ratio=1e9)
    content = _zip({f"{i}.png": _png(i) for i in range(40)} | {"metadata.jsonl": b"{}"})
    with pytest.raises(UploadRejected) as err:
        extract_image_archive(content, tmp_path / "ds", small)
    assert err.value.status == 413 and _tree(tmp_path) == set()


def test_a_failed_reupload_keeps_the_previous_folder(tmp_path):
    extract_image_archive(_zip(_image_folder()), tmp_path / "ds", LIMITS)
    before = {p: (tmp_path / "ds" / p).read_bytes() for p in _tree(tmp_path / "ds")}
    with pytest.raises(UploadRejected):
        extract_image_archive(_zip({"../x.png": _png(), "metadata.jsonl": b"{}"}), tmp_path / "ds", LIMITS)
    assert {p: (tmp_path / "ds" / p).read_bytes() for p in _tree(tmp_path / "ds")} == before
    assert _tree(tmp_path) == {"ds"} | {f"ds/{p}" for p in before}


def test_upload_through_the_gateway(api):
    name = f"upload-{uuid.uuid4().hex[:8]}"
    assert api.post("/v1/selection/datasets", json={"name": name}).status_code == 201
    storage = get_settings().resolved_artifact_root / "datasets"
    before = _tree(storage)

    bad = api.post(f"/v1/selection/datasets/{name}/upload",
                   files={"file": ("d.zip", _zip({"../../evil.png": _png(), "metadata.jsonl": b"{}"}), "application/zip")})
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert _tree(storage) == before
    assert api.get(f"/v1/selection/datasets/{name}").json()["uri"] is None

    not_zip = api.post(f"/v1/selection/datasets/{name}/upload", files={"file": ("d.zip", b"plain text", "text/plain")})
    assert not_zip.status_code == 415

    ok = api.post(f"/v1/selection/datasets/{name}/upload",
                  files={"file": ("d.zip", _zip(_image_folder(4)), "application/zip")})
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["size"] == 4 and Path(body["uri"]).parent == storage
    assert sorted(p.name for p in Path(body["uri"]).iterdir()) == ["0.png", "1.png", "2.png", "3.png", "metadata.jsonl"]
    # captions that do not match the files: the folder is not usable, the previous upload stays
    broken = _image_folder(2)
    broken["metadata.jsonl"] = json.dumps({"file_name": "missing.png", "text": "x"}).encode()
    again = api.post(f"/v1/selection/datasets/{name}/upload", files={"file": ("d.zip", _zip(broken), "application/zip")})
    assert again.status_code == 422
    assert len(list(Path(body["uri"]).glob("*.png"))) == 4

    assert api.post("/v1/selection/datasets/no-such-dataset/upload",
                    files={"file": ("d.zip", _zip(_image_folder()), "application/zip")}).status_code == 404
