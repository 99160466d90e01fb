"""Training code of the model layer: the contrastive fine-tuning loop and the retrieval metrics it is judged by.

* :mod:`.loop`: fine-tunes an open_clip model in place on image–text pairs (torch is imported only when
  training runs, so importing this package stays light);
* :mod:`.metrics`: recall@k, MRR and nDCG@k on ranked id lists (shared with ``catalens eval``);
* :mod:`.errors`: :class:`FinetuneError`, a job whose inputs cannot be trained on.

The catalog job that feeds the loop from a store is ``catalens.indexer.finetune``.
"""

from __future__ import annotations

from catalens.models.training.errors import FinetuneError
from catalens.models.training.loop import EpochLog, FinetuneConfig, FinetuneResult, finetune
from catalens.models.training.metrics import NDCG_AT, RECALL_AT, first_relevant_rank, ndcg, retrieval_metrics

__all__ = [
    "NDCG_AT",
    "RECALL_AT",
    "EpochLog",
    "FinetuneConfig",
    "FinetuneError",
    "FinetuneResult",
    "finetune",
    "first_relevant_rank",
    "ndcg",
    "retrieval_metrics",
]
