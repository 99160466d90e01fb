"""Heavy passes on a Ray cluster: reading and decoding as CPU tasks, models in actor pools, one writer.

The store keeps one writer, the driver: it plans a pass exactly as a local run does and commits each batch
of results as it streams back, so a lost driver or cluster resumes like a killed local run. Ray is an
optional dependency (``pip install 'catalens[ray]'``); nothing here imports it until a pass starts.
"""

from catalens.indexer.distributed.embed_pass import EmbedJob, EmbedStream, ResultBatch, embed_on_ray
from catalens.indexer.distributed.enrich_pass import EnrichStream, RayEnrichJob, caption_job, ocr_job
from catalens.indexer.distributed.options import LOCAL, NodeThroughput, RayOptions, RaySummary

__all__ = [
    "LOCAL",
    "EmbedJob",
    "EmbedStream",
    "EnrichStream",
    "NodeThroughput",
    "RayEnrichJob",
    "RayOptions",
    "RaySummary",
    "ResultBatch",
    "caption_job",
    "embed_on_ray",
    "ocr_job",
]
