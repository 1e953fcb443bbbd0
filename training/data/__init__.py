"""Speech data for the training engine: manifests, a mixed/cropped audio dataset and its collate, and a
length-bucketed batch sampler. Generic: imports no model package."""

from .audio_dataset import AudioBatch, AudioDataset, collate_audio, normalise_sources
from .manifest import ManifestEntry, read_manifest, split_by_speaker, write_manifest
from .samplers import BucketBatchSampler

__all__ = [
    "AudioBatch",
    "AudioDataset",
    "BucketBatchSampler",
    "ManifestEntry",
    "collate_audio",
    "normalise_sources",
    "read_manifest",
    "split_by_speaker",
    "write_manifest",
]
