from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.body_selection_upload_dataset import BodySelectionUploadDataset
from ...models.dataset_out import DatasetOut
from ...models.problem import Problem
from ...types import Response


def _get_kwargs(
    dataset_id: str,
    *,
    body: BodySelectionUploadDataset,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/v1/selection/datasets/{dataset_id}/upload".format(
            dataset_id=quote(str(dataset_id), safe=""),
        ),
    }

    _kwargs["files"] = body.to_multipart()

    headers["Content-Type"] = "multipart/form-data; boundary=+++"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(*, client: AuthenticatedClient | Client, response: httpx.Response) -> DatasetOut | Problem | None:
    if response.status_code == 200:
        response_200 = DatasetOut.from_dict(response.json())

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
) -> Response[DatasetOut | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionUploadDataset,
) -> Response[DatasetOut | Problem]:
    """Upload Dataset

     A zip of the image folder (images + metadata.jsonl or metadata.csv with file_name and text).

    Unpacked into the platform's storage and checked first (size, file count, compression ratio, paths,
    image contents); the dataset's uri then points at it and its old profile is dropped.

    Args:
        dataset_id (str):
        body (BodySelectionUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetOut | Problem]
    """

    kwargs = _get_kwargs(
        dataset_id=dataset_id,
        body=body,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionUploadDataset,
) -> DatasetOut | Problem | None:
    """Upload Dataset

     A zip of the image folder (images + metadata.jsonl or metadata.csv with file_name and text).

    Unpacked into the platform's storage and checked first (size, file count, compression ratio, paths,
    image contents); the dataset's uri then points at it and its old profile is dropped.

    Args:
        dataset_id (str):
        body (BodySelectionUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetOut | Problem
    """

    return sync_detailed(
        dataset_id=dataset_id,
        client=client,
        body=body,
    ).parsed


async def asyncio_detailed(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionUploadDataset,
) -> Response[DatasetOut | Problem]:
    """Upload Dataset

     A zip of the image folder (images + metadata.jsonl or metadata.csv with file_name and text).

    Unpacked into the platform's storage and checked first (size, file count, compression ratio, paths,
    image contents); the dataset's uri then points at it and its old profile is dropped.

    Args:
        dataset_id (str):
        body (BodySelectionUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[DatasetOut | Problem]
    """

    kwargs = _get_kwargs(
        dataset_id=dataset_id,
        body=body,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    dataset_id: str,
    *,
    client: AuthenticatedClient | Client,
    body: BodySelectionUploadDataset,
) -> DatasetOut | Problem | None:
    """Upload Dataset

     A zip of the image folder (images + metadata.jsonl or metadata.csv with file_name and text).

    Unpacked into the platform's storage and checked first (size, file count, compression ratio, paths,
    image contents); the dataset's uri then points at it and its old profile is dropped.

    Args:
        dataset_id (str):
        body (BodySelectionUploadDataset):

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        DatasetOut | Problem
    """

    return (
        await asyncio_detailed(
            dataset_id=dataset_id,
            client=client,
            body=body,
        )
    ).parsed
