from enum import StrEnum


class CalibrationConfigMode(StrEnum):
    DATA = "data"
    SAMPLING = "sampling"

    def __str__(self) -> str:
        return str(self.value)
