"""Shared diffusion toolkit: tiny/real model bundles, sampling, image datasets and quality metrics.

Plain library code (no web/DB/queue imports); every service builds on these names.
"""
from .bundle import DiffusionBundle, ModelInfo, ModelRefError, inspect_model, load_bundle, skeleton_bundle
from .data import (
    COLORS,
    FAMILIES,
    SYNTHETIC_DOMAINS,
    DatasetError,
    ImageCaptionDataset,
    SyntheticDomain,
    generate_synthetic_dataset,
    load_imagefolder,
    register_domain,
    render_synthetic,
)
from .features import (
    OfflineImageFeatureExtractor,
    extract_features,
    image_quality,
    load_feature_extractor,
    paired_quality,
    to_uint8,
)
from .sampling import SAMPLERS, initial_noise, make_sampling_scheduler, sample
from .tiny import TINY_KINDS, build_tiny, tiny_config
from .tokenizer import build_offline_tokenizer

__all__ = [
    "COLORS", "FAMILIES", "SAMPLERS", "SYNTHETIC_DOMAINS", "TINY_KINDS", "DatasetError", "DiffusionBundle",
    "ImageCaptionDataset", "ModelInfo", "ModelRefError", "OfflineImageFeatureExtractor", "SyntheticDomain",
    "build_offline_tokenizer", "build_tiny", "extract_features", "generate_synthetic_dataset", "image_quality",
    "initial_noise", "inspect_model", "load_bundle", "load_feature_extractor", "load_imagefolder", "make_sampling_scheduler",
    "paired_quality", "register_domain", "render_synthetic", "sample", "skeleton_bundle", "tiny_config", "to_uint8",
]
