from enum import StrEnum


class TrainingJobRequestMode(StrEnum):
    AMP = "amp"
    FP32 = "fp32"
    MEMLEAN = "memlean"
    MEMLEAN_BF16_STATES = "memlean_bf16_states"

    def __str__(self) -> str:
        return str(self.value)
