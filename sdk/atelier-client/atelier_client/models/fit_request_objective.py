from enum import StrEnum


class FitRequestObjective(StrEnum):
    LAMBDARANK = "lambdarank"
    REGRESSION = "regression"

    def __str__(self) -> str:
        return str(self.value)
