"""Where job outputs live: a directory root on disk, indexed by the artifacts table."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from services.common.db import Base, new_id, utcnow
from services.common.errors import not_found
from services.common.settings import get_settings


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), default=None, index=True)
    kind: Mapped[str] = mapped_column(String(50))
    relpath: Mapped[str] = mapped_column(String(500))
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


def root() -> Path:
    path = get_settings().resolved_artifact_root
    path.mkdir(parents=True, exist_ok=True)
    return path


def size_on_disk(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def register(*, db_session: Session, path: Path, kind: str, job_id: str | None = None) -> Artifact:
    """Index a file or folder under the artifact root; idempotent per (job, kind)."""
    path = path.resolve()
    relpath = str(path.relative_to(root()))
    existing = db_session.query(Artifact).filter_by(job_id=job_id, kind=kind, relpath=relpath).one_or_none()
    if existing is not None:
        return existing
    artifact = Artifact(kind=kind, relpath=relpath, bytes=size_on_disk(path), job_id=job_id)
    db_session.add(artifact)
    db_session.flush()
    return artifact


def get(*, db_session: Session, artifact_id: str, kind: str | None = None) -> Artifact:
    artifact = db_session.get(Artifact, artifact_id)
    if artifact is None or (kind is not None and artifact.kind != kind):
        raise not_found("artifact", artifact_id)
    return artifact


def local_path(artifact: Artifact) -> Path:
    return root() / artifact.relpath


def download(*, db_session: Session, artifact_id: str, kind: str):
    """The artifact as a zip download (a 404 for an unknown id, a 410 when its files are gone)."""
    from fastapi.responses import StreamingResponse

    from services.common.errors import Problem

    artifact = get(db_session=db_session, artifact_id=artifact_id, kind=kind)
    path = local_path(artifact)
    if not path.exists():
        raise Problem(410, f"artifact {artifact_id} is no longer on disk")
    return StreamingResponse(zip_stream(path), media_type="application/zip",
                             headers={"Content-Disposition": f'attachment; filename="{artifact_id}.zip"'})


def zip_stream(path: Path) -> Iterator[bytes]:
    """A folder as a zip, built in memory (artifacts here are small); a file as itself."""
    if path.is_file():
        yield path.read_bytes()
        return
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(path))
    yield buffer.getvalue()
