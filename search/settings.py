"""Service settings, read in one place: environment variables prefixed ``CATALENS_`` (or explicit values)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalens.search.engine import Fusion


class Settings(BaseSettings):
    """Everything the HTTP service can be configured with.

    Attributes:
        store: the store directory to serve.
        device: where the model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        max_upload_bytes: the largest request body accepted (images, forms); larger ones get 413.
        max_k: the largest page size a client may ask for.
        refresh_interval_s: how often the service looks for a newly published index generation.
        allow_url_items: whether ``POST /v1/items`` may fetch an image from a URL given by the client.
        fetch_timeout_s: timeout for those fetches.
        text_encoder: a text-encoder spec for queries (e.g. a multilingual model paired with the store's
            image tower); ``None`` uses the store model's own text tower.
        allow_unpaired_text_encoder: accept a text encoder not registered as aligned to the store's model.
        vector_weight, lexical_weight, rrf_k: hybrid ranking's reciprocal-rank fusion (see
            :class:`search.engine.Fusion`; the defaults are the measured ones).
    """

    model_config = SettingsConfigDict(env_prefix="CATALENS_", frozen=True)

    store: Path
    device: str = "auto"
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_k: int = Field(default=200, gt=0)
    refresh_interval_s: float = Field(default=2.0, gt=0)
    allow_url_items: bool = True
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    text_encoder: str | None = None
    allow_unpaired_text_encoder: bool = False
    vector_weight: float = Field(default=Fusion.vector_weight, ge=0)
    lexical_weight: float = Field(default=Fusion.lexical_weight, ge=0)
    rrf_k: float = Field(default=Fusion.rank_constant, ge=0)

    def to_env(self) -> dict[str, str]:
        """These settings as ``CATALENS_*`` environment variables, from which ``Settings()`` rebuilds them.

        How settings reach other processes (``catalens serve --workers N`` starts uvicorn workers that build
        their app from the environment). Every field is written, so values given as arguments win over stale
        variables; a field that is ``None`` is left out, and its variable belongs removed (see
        :meth:`env_names`).
        """
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            env[self.env_name(name)] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    @classmethod
    def env_names(cls) -> list[str]:
        """The environment variable of every field, e.g. ``CATALENS_STORE``."""
        return [cls.env_name(name) for name in cls.model_fields]

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of one field."""
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    def fusion(self) -> Fusion:
        """The engine's hybrid fusion settings."""
        return Fusion(vector_weight=self.vector_weight, lexical_weight=self.lexical_weight, rank_constant=self.rrf_k)
