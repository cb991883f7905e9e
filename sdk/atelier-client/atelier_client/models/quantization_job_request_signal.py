from enum import StrEnum


class QuantizationJobRequestSignal(StrEnum):
    HYBRID = "hybrid"
    ORTHOGONALITY = "orthogonality"
    RANDOM = "random"
    SENSITIVITY = "sensitivity"
    UNIFORM = "uniform"

    def __str__(self) -> str:
        return str(self.value)
