from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.body_selection_import_coverage import BodySelectionImportCoverage
from ...models.import_report_out import ImportReportOut
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    *,
    body: BodySelectionImportCoverage,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/selection/coverage/import",
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> ImportReportOut | Problem | None:
    if response.status_code == 200:
        response_200 = ImportReportOut.from_dict(response.json())

        return response_200

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


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[ImportReportOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionImportCoverage,
) -> Response[ImportReportOut | Problem]:
    """Import Coverage

     A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column = reference,
    e.g. a model's pretraining set). Profiled pairs need none: it is computed from their profiles.

    Args:
        body (BodySelectionImportCoverage):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ImportReportOut | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionImportCoverage,
) -> ImportReportOut | Problem | None:
    """Import Coverage

     A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column = reference,
    e.g. a model's pretraining set). Profiled pairs need none: it is computed from their profiles.

    Args:
        body (BodySelectionImportCoverage):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ImportReportOut | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionImportCoverage,
) -> Response[ImportReportOut | Problem]:
    """Import Coverage

     A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column = reference,
    e.g. a model's pretraining set). Profiled pairs need none: it is computed from their profiles.

    Args:
        body (BodySelectionImportCoverage):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[ImportReportOut | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionImportCoverage,
) -> ImportReportOut | Problem | None:
    """Import Coverage

     A directed coverage matrix (domain_coverage_*.csv: row = covered dataset, column = reference,
    e.g. a model's pretraining set). Profiled pairs need none: it is computed from their profiles.

    Args:
        body (BodySelectionImportCoverage):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        ImportReportOut | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
        )
    ).parsed
