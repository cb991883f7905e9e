"""MPQ-Diff mixed-precision quantization of diffusion denoisers (domain core: no web, queue or DB imports)."""
from .allocate import Allocation, BudgetError, solve_allocation
from .export import export_quantized, load_quantized
from .importance import SIGNALS
from .orthogonality import orm_matrix, orthogonality_importance
from .pipeline import (
    DEFAULT_SIGNAL,
    BudgetConfig,
    CalibrationConfig,
    QuantizationCancelled,
    QuantizationConfig,
    QuantizationOutcome,
    layer_layout,
    run_quantization,
    validate_config,
)

__all__ = [
    "Allocation", "BudgetError", "solve_allocation", "export_quantized", "load_quantized", "SIGNALS",
    "orm_matrix", "orthogonality_importance", "DEFAULT_SIGNAL", "BudgetConfig", "CalibrationConfig",
    "QuantizationCancelled", "QuantizationConfig", "QuantizationOutcome", "layer_layout", "run_quantization",
    "validate_config",
]
