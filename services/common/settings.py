"""Platform settings: one pydantic-settings object, read from ATELIER_* variables.

With nothing set, Atelier runs embedded: a SQLite file under ./.atelier/, an
in-process worker instead of Celery, and every service mounted in the gateway.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

SERVICE_NAMES = ("selection", "quantization", "training")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATELIER_", env_file=".env", extra="ignore")

    home: Path = Field(Path(".atelier"), description="Folder for the embedded database and artifacts.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default: SQLite file in `home`.")
    broker_url: str | None = Field(
        None, description="Celery broker (redis://…). Unset: jobs run on the in-process worker."
    )
    broker_key_prefix: str = Field("", description="Prefix for every broker key (several stacks on one Redis).")
    artifact_root: Path | None = Field(None, description="Where job outputs live; default `home`/artifacts.")
    selection_url: str | None = Field(None, description="Selection service base URL; unset: in-process.")
    quantization_url: str | None = Field(None, description="Quantization service base URL; unset: in-process.")
    training_url: str | None = Field(None, description="Training service base URL; unset: in-process.")
    upload_max_bytes: int = Field(64 * 1024 * 1024, description="Largest accepted upload body.")
    upload_max_files: int = Field(20_000, description="Most files accepted in one dataset archive.")
    upload_max_unpacked_bytes: int = Field(1024 * 1024 * 1024, description="Largest unpacked size of a dataset archive.")
    upload_max_ratio: float = Field(200.0, description="Largest compression ratio of one archive member (zip bombs).")
    key_pepper: str = Field("atelier-dev-pepper", description="Secret mixed into API-key hashes.")
    job_max_attempts: int = Field(3, description="Deliveries of a job before it fails instead of looping.")
    job_time_limit_s: int = Field(6 * 3600, description="Hard time limit of the longest job.")
    job_stale_after_s: int = Field(120, description="A running job without heartbeat this long is re-queued.")
    embedded_worker_threads: int = Field(1, description="Threads of the in-process worker.")
    device: str = Field("auto", description="Torch device for jobs: auto | cpu | cuda.")
    inception_weights: Path | None = Field(None, description="Local Inception weights for FID; unset: offline extractor.")
    clip_path: Path | None = Field(None, description="Local CLIP model folder for dataset profiles.")
    compile_forests: bool = Field(
        True, description="Rank with the predictor's LightGBM models compiled by lleaves (same numbers, faster; "
                          "object code cached in `home`/cache/forests).")
    cors_origins: list[str] = Field(default_factory=list, description="Allowed CORS origins; empty = closed.")
    rate_limit_per_minute: int = Field(
        1200, ge=0, description="Requests a minute per API key, refilled continuously; 0 turns rate limiting off.")
    rate_limit_burst: int = Field(200, ge=1, description="Requests one API key may make at once (the bucket size).")
    extra_services: dict[str, str] = Field(
        default_factory=dict, description='Plug-in services mounted by the gateway: {"name": "module:factory"}.')
    extra_task_modules: list[str] = Field(
        default_factory=list, description="Plug-in modules whose import registers more job kinds.")

    @property
    def embedded(self) -> bool:
        return self.broker_url is None

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'atelier.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> Path:
        return (self.artifact_root or self.home / "artifacts").resolve()

    @property
    def visibility_timeout_s(self) -> int:
        # Redis re-delivers an unacked message after this; it must outlast any job.
        return self.job_time_limit_s + 3600

    def service_url(self, name: str) -> str | None:
        return getattr(self, f"{name}_url")


@lru_cache
def get_settings() -> Settings:
    return Settings()


def resolve_device(requested: str | None = None) -> str:
    """'auto' picks CUDA when present; jobs always also run on CPU."""
    choice = requested or get_settings().device
    if choice == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice
