from enum import StrEnum


class QuantizationJobRequestSign(StrEnum):
    NEG = "neg"
    POS = "pos"

    def __str__(self) -> str:
        return str(self.value)
