"""What every service's request bodies share."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body. A field it does not know is a 422 naming it, not silently dropped (a typo
    such as `candidate_bits` for `weight_bits` would otherwise run the job on the defaults), and a
    float must be finite: JSON has no NaN or Infinity, so PostgreSQL's json columns refuse them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _finite_json(value: Any, where: str = "") -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{where or 'a value'} is {value}, which JSON cannot hold: give a finite number")
    if isinstance(value, dict):
        for key, item in value.items():
            _finite_json(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _finite_json(item, f"{where}[{i}]")
    return value


# free-form JSON (metadata, a run's config): any shape, but only numbers JSON can store
JsonObject = Annotated[dict[str, Any], AfterValidator(_finite_json)]
