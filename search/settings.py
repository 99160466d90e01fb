"""Service settings, read in one place: environment variables prefixed ``CATALENS_`` (or explicit values)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from catalens.indexer.urlguard import parse_allow
from catalens.search.engine import ClassifyLimits, Fusion
from catalens.search.engine.text_cache import DEFAULT_TEXT_CACHE_SIZE


class Settings(BaseSettings):
    """Everything the HTTP service can be configured with.

    Attributes:
        store: the store directory to serve.
        device: where the model runs (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        max_upload_bytes: the largest request body accepted (images, forms); larger ones get 413.
        max_image_pixels: the most pixels an uploaded image may have when its format cannot be decoded at
            reduced size (all but JPEG); larger ones get 422. Bounds the decoder's memory per request (about
            4 bytes a pixel: the default, 40 million pixels, is about 160 MB).
        max_k: the largest page size a client may ask for.
        refresh_interval_s: how often the service looks for a newly published index generation.
        allow_url_items: whether ``POST /v1/items`` may fetch an image from a URL given by the client (off by
            default; when on, every URL passes the URL guard of :mod:`catalens.indexer.urlguard`).
        fetch_timeout_s: connect and per-read timeout of the service's URL fetches.
        fetch_deadline_s: the most time one URL fetch may take in all (a trickling server is cut off).
        fetch_allow: hosts and networks the service may fetch although they are not public, comma-separated
            (``cdn.example.com,.example.org,10.2.0.0/16``); loopback, private and link-local are refused otherwise.
        max_url_fetches: URL fetches in flight at once; a request finding them all busy gets 503, so slow
            servers cannot take every worker thread from searches and health checks.
        text_encoder: a text-encoder spec for queries (e.g. a multilingual model paired with the store's
            image tower); ``None`` uses the store model's own text tower.
        allow_unpaired_text_encoder: accept a text encoder not registered as aligned to the store's model.
        vector_weight, lexical_weight, rrf_k, vector_captions: hybrid ranking's reciprocal-rank fusion (see
            :class:`search.engine.Fusion`; the defaults are the measured ones).
        text_cache_size: query texts and label prompts whose vectors the engine keeps (an LRU; 0 turns it off).
        classify_max_*: the most work one ``POST /v1/classify`` may ask for (see
            :class:`catalens.search.engine.ClassifyLimits`).
        blur_faces: blur the faces a detector finds in served images and thumbnails (stored bytes unchanged).
        keep_upload_location: keep GPS EXIF and location XMP in images added through the API (stripped by default).
        api_keys: accepted API keys as comma-separated ``SCOPE:SHA256[:NAME]`` entries (hashes, never keys).
        keys_file: the keys file written by ``catalens keys`` (default ``<store>/keys.json``), re-read on change.
        public_read: whether read routes answer without a key (write routes need one whenever keys exist).
        cors_origins: comma-separated origins (``https://shop.example``) allowed to call the API from a
            browser, and to send writes; none by default.
        rate_limit: per key or client address on the expensive routes (image search, classify), e.g.
            ``30/minute``; ``off`` disables it.
        read_only: serve as a read replica (``catalens serve --read-only``): the store is never written and the
            writer lock never taken, item writes answer 405, and each generation the indexer publishes (and the
            items a writer adds since) is picked up, so several replicas can serve one store beside one writer.
    """

    model_config = SettingsConfigDict(env_prefix="CATALENS_", frozen=True)

    store: Path
    device: str = "auto"
    max_upload_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    max_image_pixels: int = Field(default=40_000_000, gt=0)
    max_k: int = Field(default=200, gt=0)
    refresh_interval_s: float = Field(default=2.0, gt=0)
    allow_url_items: bool = False
    fetch_timeout_s: float = Field(default=10.0, gt=0)
    fetch_deadline_s: float = Field(default=20.0, gt=0)
    fetch_allow: str = ""
    max_url_fetches: int = Field(default=4, gt=0)
    text_encoder: str | None = None
    allow_unpaired_text_encoder: bool = False
    vector_weight: float = Field(default=Fusion.vector_weight, ge=0)
    lexical_weight: float = Field(default=Fusion.lexical_weight, ge=0)
    rrf_k: float = Field(default=Fusion.rank_constant, ge=0)
    vector_captions: bool = Fusion.vector_captions
    text_cache_size: int = Field(default=DEFAULT_TEXT_CACHE_SIZE, ge=0)
    classify_max_labels: int = Field(default=ClassifyLimits.max_labels, gt=0)
    classify_max_templates: int = Field(default=ClassifyLimits.max_templates, gt=0)
    classify_max_label_chars: int = Field(default=ClassifyLimits.max_label_chars, gt=0)
    classify_max_template_chars: int = Field(default=ClassifyLimits.max_template_chars, gt=0)
    classify_max_prompts: int = Field(default=ClassifyLimits.max_prompts, gt=0)
    blur_faces: bool = False
    keep_upload_location: bool = False
    api_keys: str | None = Field(default=None, repr=False)
    keys_file: Path | None = None
    public_read: bool = True
    cors_origins: str = ""
    read_only: bool = False
    rate_limit: str = Field(
        default="30/minute", pattern=r"(?i)^\s*(off|none|0|\d+\s*/\s*(s|sec|second|m|min|minute|h|hour)s?)\s*$"
    )

    @field_validator("fetch_allow")
    @classmethod
    def _check_fetch_allow(cls, value: str) -> str:
        parse_allow(value)  # a typo stops start-up instead of silently changing what may be fetched
        return value

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

    def classify_limits(self) -> ClassifyLimits:
        """The most work one classification may ask for (``CATALENS_CLASSIFY_MAX_*``)."""
        return ClassifyLimits(
            max_labels=self.classify_max_labels,
            max_templates=self.classify_max_templates,
            max_label_chars=self.classify_max_label_chars,
            max_template_chars=self.classify_max_template_chars,
            max_prompts=self.classify_max_prompts,
        )

    def fusion(self) -> Fusion:
        """The engine's hybrid fusion settings."""
        return Fusion(
            vector_weight=self.vector_weight,
            lexical_weight=self.lexical_weight,
            rank_constant=self.rrf_k,
            vector_captions=self.vector_captions,
        )
