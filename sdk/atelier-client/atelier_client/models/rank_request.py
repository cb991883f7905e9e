from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.inline_dataset import InlineDataset


T = TypeVar("T", bound="RankRequest")


@_attrs_define
class RankRequest:
    """
    Attributes:
        candidates (list[str] | None | Unset): Model ids or names.
        dataset (None | str | Unset): A registered dataset, by id or name.
        inline (InlineDataset | None | Unset):
        k (int | Unset):  Default: 10.
    """

    candidates: list[str] | None | Unset = UNSET
    dataset: None | str | Unset = UNSET
    inline: InlineDataset | None | Unset = UNSET
    k: int | Unset = 10

    def to_dict(self) -> dict[str, Any]:
        from ..models.inline_dataset import InlineDataset  # noqa: PLC0415

        candidates: list[str] | None | Unset
        if isinstance(self.candidates, Unset):
            candidates = UNSET
        elif isinstance(self.candidates, list):
            candidates = self.candidates

        else:
            candidates = self.candidates

        dataset: None | str | Unset
        if isinstance(self.dataset, Unset):
            dataset = UNSET
        else:
            dataset = self.dataset

        inline: dict[str, Any] | None | Unset
        if isinstance(self.inline, Unset):
            inline = UNSET
        elif isinstance(self.inline, InlineDataset):
            inline = self.inline.to_dict()
        else:
            inline = self.inline

        k = self.k

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if candidates is not UNSET:
            field_dict["candidates"] = candidates
        if dataset is not UNSET:
            field_dict["dataset"] = dataset
        if inline is not UNSET:
            field_dict["inline"] = inline
        if k is not UNSET:
            field_dict["k"] = k

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.inline_dataset import InlineDataset  # noqa: PLC0415

        d = dict(src_dict)

        def _parse_candidates(data: object) -> list[str] | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, list):
                    raise TypeError()
                candidates_type_0 = cast(list[str], data)

                return candidates_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(list[str] | None | Unset, data)

        candidates = _parse_candidates(d.pop("candidates", UNSET))

        def _parse_dataset(data: object) -> None | str | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(None | str | Unset, data)

        dataset = _parse_dataset(d.pop("dataset", UNSET))

        def _parse_inline(data: object) -> InlineDataset | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                inline_type_0 = InlineDataset.from_dict(data)

                return inline_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(InlineDataset | None | Unset, data)

        inline = _parse_inline(d.pop("inline", UNSET))

        k = d.pop("k", UNSET)

        rank_request = cls(
            candidates=candidates,
            dataset=dataset,
            inline=inline,
            k=k,
        )

        return rank_request
