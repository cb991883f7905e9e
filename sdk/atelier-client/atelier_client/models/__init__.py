"""Contains all the data models used in inputs/outputs"""

from .adapt_request import AdaptRequest
from .body_selection_import_coverage import BodySelectionImportCoverage
from .body_selection_import_datasets import BodySelectionImportDatasets
from .body_selection_import_models import BodySelectionImportModels
from .body_selection_import_results import BodySelectionImportResults
from .body_selection_import_similarities import BodySelectionImportSimilarities
from .body_selection_upload_dataset import BodySelectionUploadDataset
from .budget_config import BudgetConfig
from .calibration_config import CalibrationConfig
from .calibration_config_mode import CalibrationConfigMode
from .dataset_in import DatasetIn
from .dataset_in_caption_stats import DatasetInCaptionStats
from .dataset_in_metadata import DatasetInMetadata
from .dataset_out import DatasetOut
from .dataset_out_caption_stats import DatasetOutCaptionStats
from .dataset_out_metadata import DatasetOutMetadata
from .dataset_patch import DatasetPatch
from .dataset_patch_caption_stats_type_0 import DatasetPatchCaptionStatsType0
from .dataset_patch_metadata_type_0 import DatasetPatchMetadataType0
from .fit_request import FitRequest
from .fit_request_embedding import FitRequestEmbedding
from .fit_request_objective import FitRequestObjective
from .graph_out import GraphOut
from .graph_out_edges_item import GraphOutEdgesItem
from .graph_out_nodes_item import GraphOutNodesItem
from .graph_version_out import GraphVersionOut
from .graph_version_out_config import GraphVersionOutConfig
from .graph_version_out_metrics import GraphVersionOutMetrics
from .health_gateway_healthz_response_health_gateway_healthz import HealthGatewayHealthzResponseHealthGatewayHealthz
from .import_report_out import ImportReportOut
from .import_report_out_degenerate import ImportReportOutDegenerate
from .import_report_out_renamed import ImportReportOutRenamed
from .import_report_out_skipped_item import ImportReportOutSkippedItem
from .import_report_out_unmatched import ImportReportOutUnmatched
from .inline_dataset import InlineDataset
from .inline_dataset_distances_type_0 import InlineDatasetDistancesType0
from .inline_dataset_metadata import InlineDatasetMetadata
from .job_out import JobOut
from .job_out_detail import JobOutDetail
from .job_out_error_type_0 import JobOutErrorType0
from .job_out_params import JobOutParams
from .job_out_result_type_0 import JobOutResultType0
from .job_out_status import JobOutStatus
from .job_page import JobPage
from .jobs_list_jobs_status_type_0 import JobsListJobsStatusType0
from .key_create import KeyCreate
from .key_create_scope import KeyCreateScope
from .key_created import KeyCreated
from .key_out import KeyOut
from .model_in import ModelIn
from .model_in_features import ModelInFeatures
from .model_in_metadata import ModelInMetadata
from .model_out import ModelOut
from .model_out_features import ModelOutFeatures
from .model_out_metadata import ModelOutMetadata
from .model_patch import ModelPatch
from .model_patch_features_type_0 import ModelPatchFeaturesType0
from .model_patch_metadata_type_0 import ModelPatchMetadataType0
from .problem import Problem
from .problem_field_error import ProblemFieldError
from .profile_request import ProfileRequest
from .quantization_budget import QuantizationBudget
from .quantization_job_request import QuantizationJobRequest
from .quantization_job_request_overrides import QuantizationJobRequestOverrides
from .quantization_job_request_sign import QuantizationJobRequestSign
from .quantization_job_request_signal import QuantizationJobRequestSignal
from .quantized_model_out import QuantizedModelOut
from .quantized_model_out_quality import QuantizedModelOutQuality
from .rank_request import RankRequest
from .rank_response import RankResponse
from .ranked_model_out import RankedModelOut
from .ranked_model_out_explanation import RankedModelOutExplanation
from .result_in import ResultIn
from .result_in_config import ResultInConfig
from .result_in_source import ResultInSource
from .result_out import ResultOut
from .result_out_config import ResultOutConfig
from .selection_get_evaluation_response_selection_get_evaluation import (
    SelectionGetEvaluationResponseSelectionGetEvaluation,
)
from .similarity_in import SimilarityIn
from .training_budget import TrainingBudget
from .training_job_request import TrainingJobRequest
from .training_job_request_attention_precision import TrainingJobRequestAttentionPrecision
from .training_job_request_lr_schedule import TrainingJobRequestLrSchedule
from .training_job_request_mode import TrainingJobRequestMode
from .training_job_request_optimizer import TrainingJobRequestOptimizer
from .training_run_out import TrainingRunOut
from .training_run_out_quality import TrainingRunOutQuality

__all__ = (
    "AdaptRequest",
    "BodySelectionImportCoverage",
    "BodySelectionImportDatasets",
    "BodySelectionImportModels",
    "BodySelectionImportResults",
    "BodySelectionImportSimilarities",
    "BodySelectionUploadDataset",
    "BudgetConfig",
    "CalibrationConfig",
    "CalibrationConfigMode",
    "DatasetIn",
    "DatasetInCaptionStats",
    "DatasetInMetadata",
    "DatasetOut",
    "DatasetOutCaptionStats",
    "DatasetOutMetadata",
    "DatasetPatch",
    "DatasetPatchCaptionStatsType0",
    "DatasetPatchMetadataType0",
    "FitRequest",
    "FitRequestEmbedding",
    "FitRequestObjective",
    "GraphOut",
    "GraphOutEdgesItem",
    "GraphOutNodesItem",
    "GraphVersionOut",
    "GraphVersionOutConfig",
    "GraphVersionOutMetrics",
    "HealthGatewayHealthzResponseHealthGatewayHealthz",
    "ImportReportOut",
    "ImportReportOutDegenerate",
    "ImportReportOutRenamed",
    "ImportReportOutSkippedItem",
    "ImportReportOutUnmatched",
    "InlineDataset",
    "InlineDatasetDistancesType0",
    "InlineDatasetMetadata",
    "JobOut",
    "JobOutDetail",
    "JobOutErrorType0",
    "JobOutParams",
    "JobOutResultType0",
    "JobOutStatus",
    "JobPage",
    "JobsListJobsStatusType0",
    "KeyCreate",
    "KeyCreated",
    "KeyCreateScope",
    "KeyOut",
    "ModelIn",
    "ModelInFeatures",
    "ModelInMetadata",
    "ModelOut",
    "ModelOutFeatures",
    "ModelOutMetadata",
    "ModelPatch",
    "ModelPatchFeaturesType0",
    "ModelPatchMetadataType0",
    "Problem",
    "ProblemFieldError",
    "ProfileRequest",
    "QuantizationBudget",
    "QuantizationJobRequest",
    "QuantizationJobRequestOverrides",
    "QuantizationJobRequestSign",
    "QuantizationJobRequestSignal",
    "QuantizedModelOut",
    "QuantizedModelOutQuality",
    "RankedModelOut",
    "RankedModelOutExplanation",
    "RankRequest",
    "RankResponse",
    "ResultIn",
    "ResultInConfig",
    "ResultInSource",
    "ResultOut",
    "ResultOutConfig",
    "SelectionGetEvaluationResponseSelectionGetEvaluation",
    "SimilarityIn",
    "TrainingBudget",
    "TrainingJobRequest",
    "TrainingJobRequestAttentionPrecision",
    "TrainingJobRequestLrSchedule",
    "TrainingJobRequestMode",
    "TrainingJobRequestOptimizer",
    "TrainingRunOut",
    "TrainingRunOutQuality",
)
