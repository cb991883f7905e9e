"""What every service's request bodies share."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: a field it does not know is a 422 naming it, not silently dropped (a typo
    such as `candidate_bits` for `weight_bits` would otherwise run the job on the defaults)."""

    model_config = ConfigDict(extra="forbid")
