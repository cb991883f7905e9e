from enum import StrEnum


class ResultInSource(StrEnum):
    IMPORTED = "imported"
    MEASURED = "measured"

    def __str__(self) -> str:
        return str(self.value)
