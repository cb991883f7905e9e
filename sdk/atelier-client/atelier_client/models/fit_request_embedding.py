from enum import StrEnum


class FitRequestEmbedding(StrEnum):
    GAT = "gat"
    NODE2VEC = "node2vec"
    NONE = "none"
    SAGE = "sage"

    def __str__(self) -> str:
        return str(self.value)
