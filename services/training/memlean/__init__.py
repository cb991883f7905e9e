"""Memory-lean fine-tuning: bf16 weights + int16 remainders, optimizer step fused into backward.

Domain core only (no web, Celery or database imports).  The service layer calls
``run_training``; the pieces are exported for reuse and tests.
"""

from .checkpoint import export_fp32_state_dict, load_fp32_state_dict_, split_module_
from .fused import FusedBackward, FusedClippingError
from .optim import SplitAdamW, SplitOptimizer, SplitSGD, clip_grad_norm_per_param_
from .split import RoundingNoise, rebuild_fp32, split_fp32, split_into_, stochastic_round_to_bf16_
from .trainer import MODES, TrainingConfig, TrainingOutcome, run_training

__all__ = [
    "MODES",
    "FusedBackward",
    "FusedClippingError",
    "RoundingNoise",
    "SplitAdamW",
    "SplitOptimizer",
    "SplitSGD",
    "TrainingConfig",
    "TrainingOutcome",
    "clip_grad_norm_per_param_",
    "export_fp32_state_dict",
    "load_fp32_state_dict_",
    "rebuild_fp32",
    "run_training",
    "split_fp32",
    "split_into_",
    "split_module_",
    "stochastic_round_to_bf16_",
]
