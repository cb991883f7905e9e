"""The CLI's logging set-up: httpx's per-request lines stay out of INFO output."""

from __future__ import annotations

import logging

import pytest

from services import cli


@pytest.fixture
def restore_httpx_level():
    logger = logging.getLogger("httpx")
    before = logger.level
    yield logger
    logger.setLevel(before)


def test_info_logging_hides_httpx_requests_and_debug_shows_them(restore_httpx_level):
    restore_httpx_level.setLevel(logging.NOTSET)
    cli._logging("INFO")
    assert restore_httpx_level.level == logging.WARNING
    cli._logging("DEBUG")
    assert restore_httpx_level.level == logging.NOTSET
