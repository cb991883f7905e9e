from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.job_out import JobOut
from ...models.problem import Problem
from ...models.quantization_job_request import QuantizationJobRequest
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: QuantizationJobRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(idempotency_key, Unset):
        headers["Idempotency-Key"] = idempotency_key

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/quantization/jobs",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> JobOut | Problem | None:
    if response.status_code == 202:
        response_202 = JobOut.from_dict(response.json())

        return response_202

    if 400 <= response.status_code <= 499:
        response_4xx = Problem.from_dict(response.json())

        return response_4xx

    if 500 <= response.status_code <= 599:
        response_5xx = Problem.from_dict(response.json())

        return response_5xx

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> Response[JobOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: QuantizationJobRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[JobOut | Problem]:
    """Create Quantization Job

     Quantize a denoiser with MPQ-Diff (a job on the gpu queue; CPU when there is no GPU).

    Args:
        idempotency_key (None | str | Unset):
        body (QuantizationJobRequest): What to quantize and how: MPQ-Diff's config plus the model
            reference.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobOut | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: QuantizationJobRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> JobOut | Problem | None:
    """Create Quantization Job

     Quantize a denoiser with MPQ-Diff (a job on the gpu queue; CPU when there is no GPU).

    Args:
        idempotency_key (None | str | Unset):
        body (QuantizationJobRequest): What to quantize and how: MPQ-Diff's config plus the model
            reference.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobOut | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
        idempotency_key=idempotency_key,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: QuantizationJobRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> Response[JobOut | Problem]:
    """Create Quantization Job

     Quantize a denoiser with MPQ-Diff (a job on the gpu queue; CPU when there is no GPU).

    Args:
        idempotency_key (None | str | Unset):
        body (QuantizationJobRequest): What to quantize and how: MPQ-Diff's config plus the model
            reference.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[JobOut | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        idempotency_key=idempotency_key,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: QuantizationJobRequest,
    idempotency_key: None | str | Unset = UNSET,
) -> JobOut | Problem | None:
    """Create Quantization Job

     Quantize a denoiser with MPQ-Diff (a job on the gpu queue; CPU when there is no GPU).

    Args:
        idempotency_key (None | str | Unset):
        body (QuantizationJobRequest): What to quantize and how: MPQ-Diff's config plus the model
            reference.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        JobOut | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            idempotency_key=idempotency_key,
        )
    ).parsed
