from enum import StrEnum


class TrainingJobRequestOptimizer(StrEnum):
    ADAMW = "adamw"
    SGD = "sgd"

    def __str__(self) -> str:
        return str(self.value)
