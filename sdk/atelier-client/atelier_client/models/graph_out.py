from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

if TYPE_CHECKING:
    from ..models.graph_out_edges_item import GraphOutEdgesItem
    from ..models.graph_out_nodes_item import GraphOutNodesItem
    from ..models.graph_version_out import GraphVersionOut


T = TypeVar("T", bound="GraphOut")


@_attrs_define
class GraphOut:
    """
    Attributes:
        edges (list[GraphOutEdgesItem]):
        nodes (list[GraphOutNodesItem]):
        stale (bool):
        version (GraphVersionOut | None):
    """

    edges: list[GraphOutEdgesItem]
    nodes: list[GraphOutNodesItem]
    stale: bool
    version: GraphVersionOut | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from ..models.graph_version_out import GraphVersionOut  # noqa: PLC0415

        edges = []
        for edges_item_data in self.edges:
            edges_item = edges_item_data.to_dict()
            edges.append(edges_item)

        nodes = []
        for nodes_item_data in self.nodes:
            nodes_item = nodes_item_data.to_dict()
            nodes.append(nodes_item)

        stale = self.stale

        version: dict[str, Any] | None
        if isinstance(self.version, GraphVersionOut):
            version = self.version.to_dict()
        else:
            version = self.version

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "edges": edges,
                "nodes": nodes,
                "stale": stale,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.graph_out_edges_item import GraphOutEdgesItem  # noqa: PLC0415
        from ..models.graph_out_nodes_item import GraphOutNodesItem  # noqa: PLC0415
        from ..models.graph_version_out import GraphVersionOut  # noqa: PLC0415

        d = dict(src_dict)
        edges = []
        _edges = d.pop("edges")
        for edges_item_data in _edges:
            edges_item = GraphOutEdgesItem.from_dict(edges_item_data)

            edges.append(edges_item)

        nodes = []
        _nodes = d.pop("nodes")
        for nodes_item_data in _nodes:
            nodes_item = GraphOutNodesItem.from_dict(nodes_item_data)

            nodes.append(nodes_item)

        stale = d.pop("stale")

        def _parse_version(data: object) -> GraphVersionOut | None:
            if data is None:
                return data
            try:
                if not isinstance(data, dict):
                    raise TypeError()
                version_type_0 = GraphVersionOut.from_dict(data)

                return version_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(GraphVersionOut | None, data)

        version = _parse_version(d.pop("version"))

        graph_out = cls(
            edges=edges,
            nodes=nodes,
            stale=stale,
            version=version,
        )

        graph_out.additional_properties = d
        return graph_out

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
