"""The browser dashboard: a static one-page app served at /dashboard.

The page itself is public (the auth middleware lets /dashboard through); every API call it makes carries the
key the user typed in, so the data behind it stays protected.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse

from services.common.errors import Problem

STATIC_DIR = Path(__file__).resolve().parent / "static"
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}

router = APIRouter(prefix="/dashboard", include_in_schema=False)


@router.get("")
def dashboard_root() -> RedirectResponse:
    # The page loads its assets by relative path, so it must be addressed with the trailing slash.
    return RedirectResponse("/dashboard/", status_code=307)


@router.get("/")
def dashboard_index() -> FileResponse:
    return _static_file("index.html")


@router.get("/{name}")
def dashboard_asset(name: str) -> FileResponse:
    return _static_file(name)


def _static_file(name: str) -> FileResponse:
    # Only plain file names straight under static/: no sub-paths, so nothing outside can be reached.
    path = STATIC_DIR / name
    if "/" in name or name.startswith(".") or path.suffix not in _MEDIA_TYPES or not path.is_file():
        raise Problem(404, f"no such dashboard file: {name}")
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers={"Cache-Control": "no-cache"})
