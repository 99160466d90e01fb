"""The typed error of a fine-tuning job that cannot run as asked.

It lives in the model layer, next to the training loop, so that every layer above (the catalog job in
``catalens.indexer.finetune``, the CLI) can raise or catch it without importing the query side or torch.
"""

from __future__ import annotations

from catalens.models.errors import CatalensError


class FinetuneError(CatalensError, ValueError):
    """A fine-tuning job's inputs are unusable: a held-out fraction outside (0, 1), a text template that
    cannot be filled, or too few usable image–text pairs. The CLI reports it as an input error."""
