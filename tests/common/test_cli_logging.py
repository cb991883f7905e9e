"""The CLI's logging set-up: httpx's per-request lines and progress bars stay out of server logs."""

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


@pytest.fixture(autouse=True)
def restore_progress_bars():
    """`_logging` switches the bars off process-wide; the other tests keep the default."""
    from huggingface_hub.utils import enable_progress_bars

    yield
    enable_progress_bars()
    import transformers

    transformers.utils.logging.enable_progress_bar()


def test_server_logging_drops_transformers_progress_bars(tmp_path, capfd):
    from transformers import CLIPTextConfig, CLIPTextModel

    def save_and_load() -> str:
        capfd.readouterr()
        CLIPTextModel(CLIPTextConfig(hidden_size=32, intermediate_size=37, num_attention_heads=4,
                                     num_hidden_layers=2, vocab_size=100)).save_pretrained(tmp_path)
        CLIPTextModel.from_pretrained(tmp_path)
        return capfd.readouterr().err

    assert "Loading weights" in save_and_load()  # the bar the server log should not get
    cli._logging("INFO")
    assert "Loading weights" not in save_and_load()
