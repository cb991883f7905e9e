from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.quantized_model_out_quality import QuantizedModelOutQuality


T = TypeVar("T", bound="QuantizedModelOut")


@_attrs_define
class QuantizedModelOut:
    """
    Attributes:
        artifact_id (str):
        avg_weight_bits (float):
        bytes_on_disk (int):
        created_at (datetime.datetime):
        id (str):
        job_id (str):
        model_ref (str):
        quality (QuantizedModelOutQuality):
        signal (str):
        weight_bytes_after (float):
        weight_bytes_before (int):
    """

    artifact_id: str
    avg_weight_bits: float
    bytes_on_disk: int
    created_at: datetime.datetime
    id: str
    job_id: str
    model_ref: str
    quality: QuantizedModelOutQuality
    signal: str
    weight_bytes_after: float
    weight_bytes_before: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        artifact_id = self.artifact_id

        avg_weight_bits = self.avg_weight_bits

        bytes_on_disk = self.bytes_on_disk

        created_at = self.created_at.isoformat()

        id = self.id

        job_id = self.job_id

        model_ref = self.model_ref

        quality = self.quality.to_dict()

        signal = self.signal

        weight_bytes_after = self.weight_bytes_after

        weight_bytes_before = self.weight_bytes_before

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "artifact_id": artifact_id,
                "avg_weight_bits": avg_weight_bits,
                "bytes_on_disk": bytes_on_disk,
                "created_at": created_at,
                "id": id,
                "job_id": job_id,
                "model_ref": model_ref,
                "quality": quality,
                "signal": signal,
                "weight_bytes_after": weight_bytes_after,
                "weight_bytes_before": weight_bytes_before,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.quantized_model_out_quality import QuantizedModelOutQuality  # noqa: PLC0415

        d = dict(src_dict)
        artifact_id = d.pop("artifact_id")

        avg_weight_bits = d.pop("avg_weight_bits")

        bytes_on_disk = d.pop("bytes_on_disk")

        created_at = datetime.datetime.fromisoformat(d.pop("created_at"))

        id = d.pop("id")

        job_id = d.pop("job_id")

        model_ref = d.pop("model_ref")

        quality = QuantizedModelOutQuality.from_dict(d.pop("quality"))

        signal = d.pop("signal")

        weight_bytes_after = d.pop("weight_bytes_after")

        weight_bytes_before = d.pop("weight_bytes_before")

        quantized_model_out = cls(
            artifact_id=artifact_id,
            avg_weight_bits=avg_weight_bits,
            bytes_on_disk=bytes_on_disk,
            created_at=created_at,
            id=id,
            job_id=job_id,
            model_ref=model_ref,
            quality=quality,
            signal=signal,
            weight_bytes_after=weight_bytes_after,
            weight_bytes_before=weight_bytes_before,
        )

        quantized_model_out.additional_properties = d
        return quantized_model_out

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
