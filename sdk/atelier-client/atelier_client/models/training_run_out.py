from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.training_run_out_quality import TrainingRunOutQuality


T = TypeVar("T", bound="TrainingRunOut")


@_attrs_define
class TrainingRunOut:
    """
    Attributes:
        artifact_id (str):
        created_at (datetime.datetime):
        dataset_uri (str):
        final_val_loss (float):
        id (str):
        job_id (str):
        median_step_seconds (float | None):
        mode (str):
        model_ref (str):
        peak_memory_bytes (int):
        quality (TrainingRunOutQuality):
        steps (int):
    """

    artifact_id: str
    created_at: datetime.datetime
    dataset_uri: str
    final_val_loss: float
    id: str
    job_id: str
    median_step_seconds: float | None
    mode: str
    model_ref: str
    peak_memory_bytes: int
    quality: TrainingRunOutQuality
    steps: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        artifact_id = self.artifact_id

        created_at = self.created_at.isoformat()

        dataset_uri = self.dataset_uri

        final_val_loss = self.final_val_loss

        id = self.id

        job_id = self.job_id

        median_step_seconds: float | None
        median_step_seconds = self.median_step_seconds

        mode = self.mode

        model_ref = self.model_ref

        peak_memory_bytes = self.peak_memory_bytes

        quality = self.quality.to_dict()

        steps = self.steps

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "artifact_id": artifact_id,
                "created_at": created_at,
                "dataset_uri": dataset_uri,
                "final_val_loss": final_val_loss,
                "id": id,
                "job_id": job_id,
                "median_step_seconds": median_step_seconds,
                "mode": mode,
                "model_ref": model_ref,
                "peak_memory_bytes": peak_memory_bytes,
                "quality": quality,
                "steps": steps,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.training_run_out_quality import TrainingRunOutQuality  # noqa: PLC0415

        d = dict(src_dict)
        artifact_id = d.pop("artifact_id")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        dataset_uri = d.pop("dataset_uri")

        final_val_loss = d.pop("final_val_loss")

        id = d.pop("id")

        job_id = d.pop("job_id")

        def _parse_median_step_seconds(data: object) -> float | None:
            if data is None:
                return data
            return cast(float | None, data)

        median_step_seconds = _parse_median_step_seconds(d.pop("median_step_seconds"))

        mode = d.pop("mode")

        model_ref = d.pop("model_ref")

        peak_memory_bytes = d.pop("peak_memory_bytes")

        quality = TrainingRunOutQuality.from_dict(d.pop("quality"))

        steps = d.pop("steps")

        training_run_out = cls(
            artifact_id=artifact_id,
            created_at=created_at,
            dataset_uri=dataset_uri,
            final_val_loss=final_val_loss,
            id=id,
            job_id=job_id,
            median_step_seconds=median_step_seconds,
            mode=mode,
            model_ref=model_ref,
            peak_memory_bytes=peak_memory_bytes,
            quality=quality,
            steps=steps,
        )

        training_run_out.additional_properties = d
        return training_run_out

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
