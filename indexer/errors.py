"""Typed errors raised by the indexer and the catalog store.

Per-item problems (:class:`ItemError` and subclasses) are recorded against the item and never stop a run;
store-level problems stop it with a message the CLI can print as is.
"""

from __future__ import annotations

from catalens.models.errors import CatalensError


class IndexerError(CatalensError):
    """Base class for every error the indexer package raises."""


class ItemError(IndexerError):
    """One catalog item could not be read or decoded; the run records ``reason`` and goes on."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"{source}: {reason}")


class ImageDecodeError(ItemError):
    """The bytes are not an allowed, intact, reasonably sized image."""


class FetchError(ItemError):
    """The bytes could not be read: a missing file, an unreachable URL, a response over the size cap."""


class SourceError(IndexerError):
    """A catalog source as a whole is unusable (missing folder, manifest without an ``image`` column...)."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"cannot read catalog source {source!r}: {reason}")


class StoreError(IndexerError):
    """Base class for problems with a store directory as a whole."""


class StoreNotFoundError(StoreError):
    """No store exists at the given path."""

    def __init__(self, path: str) -> None:
        self.path = path
        super().__init__(f"no catalens store at {path!r} (create one with `catalens index SOURCE --store {path}`)")


class StoreLockedError(StoreError):
    """Another process is writing to the store."""

    def __init__(self, path: str, holder: str) -> None:
        self.path = path
        self.holder = holder
        super().__init__(
            f"the store at {path!r} is being written by another process ({holder}); "
            "wait for it to finish, or stop it, and try again"
        )


class StoreModelMismatchError(StoreError):
    """A run asked for a model other than the one the store's vectors were made with."""

    def __init__(self, path: str, store_model: str, requested: str, message: str | None = None) -> None:
        self.path = path
        self.store_model = store_model
        self.requested = requested
        super().__init__(
            message
            or f"the store at {path!r} holds vectors from model {store_model!r}, but this run asked for "
            f"{requested!r}; vectors from two models cannot be mixed. Re-run with --rebuild to re-embed every "
            "item with the new model, or use a new --store directory"
        )


class StoreWeightsMismatchError(StoreModelMismatchError):
    """The store's model spec now loads other weights than the store's vectors were made with.

    ``catalens-mini`` after an upgrade of catalens, or a checkpoint directory trained again in place: the spec
    is the same, the vectors would not be. Found by the weights digest the store records, or, in a store
    written before digests were, by embedding a few of its images again (``agreement`` is then the lowest
    cosine between a stored vector and the new one).
    """

    def __init__(
        self, path: str, model: str, store_digest: str | None, loaded_digest: str, agreement: float | None = None
    ) -> None:
        self.store_digest = store_digest
        self.loaded_digest = loaded_digest
        self.agreement = agreement
        if store_digest is not None:
            found = f"made with weights {store_digest}, but {model!r} now loads weights {loaded_digest}"
        else:
            found = (
                f"not made with the weights {model!r} loads now ({loaded_digest}): re-embedding a sample of its "
                f"images agreed with the stored vectors only to cosine {agreement:.3f}"
            )
        super().__init__(
            path,
            model,
            model,
            f"the store at {path!r} holds vectors of {model!r} {found} (new weights under the same name, e.g. after "
            "upgrading catalens or retraining a checkpoint in place); vectors from two sets of weights cannot be "
            "mixed. Re-run `catalens index` with --rebuild to re-embed every item, or use a new --store directory",
        )


class StoreVersionError(StoreError):
    """The store's schema version is not one this catalens can read."""

    def __init__(self, path: str, found: int, supported: int, *, upgradable: bool = False) -> None:
        self.path = path
        self.found = found
        self.supported = supported
        if found > supported:
            advice = "it was written by a newer catalens; upgrade catalens to read it"
        elif upgradable:
            advice = (
                "it is upgraded in place the first time it is opened for writing (any indexing command, e.g. "
                "`catalens reindex`), which this read-only open cannot do"
            )
        else:
            advice = "no upgrade path exists from that version; rebuild it with `catalens index --rebuild`"
        super().__init__(
            f"the store at {path!r} has schema version {found}, this catalens reads version {supported}: {advice}"
        )


class StoreCorruptError(StoreError):
    """A store file exists but cannot be parsed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"the store at {path!r} is damaged: {reason}. `catalens reindex` rebuilds the index file")


class IndexBuildError(IndexerError):
    """A FAISS index could not be built with the requested factory string."""

    def __init__(self, factory: str, reason: str) -> None:
        self.factory = factory
        self.reason = reason
        super().__init__(f"cannot build a FAISS index {factory!r}: {reason}")


class IndexDamagedError(StoreCorruptError):
    """An index generation file is missing, unreadable, or not the one the manifest recorded.

    Attributes:
        path: the store directory.
        file: the index file, relative to the store.
        reason: what is wrong with it (truncated, checksum, count or dimension mismatch).
    """

    def __init__(self, path: str, file: str, reason: str) -> None:
        self.file = file
        StoreError.__init__(
            self,
            f"the index file {file} of the store at {path!r} is damaged: {reason}; "
            f"`catalens reindex --store {path}` rebuilds it from SQLite",
        )
        self.path = path
        self.reason = reason


class StoreWriteError(StoreError):
    """The store could not be written: a full disk, a read-only filesystem, an I/O error.

    What was written before stays consistent: a failed transaction rolls back, and a failed index publish
    leaves the previous generation current.

    Attributes:
        path: the store directory.
        operation: what was being written (``"publish the index"``, ``"write items"``, ...).
        reason: the operating system's or SQLite's reason.
        read_only: the store is on a read-only filesystem (or otherwise not writable).
    """

    def __init__(self, path: str, operation: str, reason: str, *, read_only: bool = False) -> None:
        self.path = path
        self.operation = operation
        self.reason = reason
        self.read_only = read_only
        if read_only:
            advice = "the store is read-only here: it can be searched, but indexing needs a writable copy"
        else:
            advice = "nothing was lost: the store keeps its previous state; free some space and run it again"
        where = f"the store at {path!r}" if path else "the store"
        super().__init__(f"cannot {operation} in {where}: {reason}; {advice}")


class RayUnavailableError(IndexerError):
    """``--ray`` was asked for but Ray is not installed here."""

    def __init__(self) -> None:
        super().__init__(
            "--ray needs Ray, which is not installed: pip install 'catalens[ray]' "
            "(every node of the cluster needs catalens and Ray of the same versions)"
        )


class RayRunError(IndexerError):
    """Ray could not be started or joined, or a pass on it failed as a whole (what was committed stays)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"Ray run failed: {reason}")
