"""Joining or starting Ray for one run, quietly, and learning the cluster's shape.

A run either joins a cluster (``address``), starts a Ray on this machine for itself and stops it afterwards,
or, when this process has already called ``ray.init`` (a notebook, a test), uses that connection and leaves
it open. Ray's own progress bars and log lines are turned off: the run reports through its progress sink.
"""

from __future__ import annotations

import logging
import socket
from types import ModuleType, TracebackType
from typing import Any

from catalens.indexer.distributed.options import RayOptions
from catalens.indexer.errors import RayRunError, RayUnavailableError

_QUIET_LOGGERS = ("ray", "ray.data", "ray._private", "ray.util")


def import_ray() -> ModuleType:
    """Import Ray and Ray Data, or raise :class:`RayUnavailableError` with the install command."""
    try:
        import ray
        import ray.data  # noqa: F401  (Ray Data ships in the ray wheel but needs pyarrow and pandas)
    except ImportError as e:
        raise RayUnavailableError() from e
    return ray


class RaySession:
    """A connection to Ray for the length of a ``with`` block.

    Attributes (after entering):
        address: where the cluster is (``local`` for one started here).
        gpus, cpus: the cluster's totals.
        hosts: node id → host name, for the nodes alive when the run started.
    """

    def __init__(self, options: RayOptions) -> None:
        self.options = options
        self.ray = import_ray()
        self.started_here = False
        self.address = options.address or "local"
        self.gpus = 0.0
        self.cpus = 0.0
        self.hosts: dict[str, str] = {}
        self._log_levels: dict[str, int] = {}

    def __enter__(self) -> RaySession:
        ray = self.ray
        self._quiet()
        if not ray.is_initialized():
            try:
                if self.options.address is None:  # a Ray of our own, even when another runs on this machine
                    ray.init(
                        address="local",
                        num_cpus=self.options.num_cpus,
                        include_dashboard=False,
                        log_to_driver=False,
                        logging_level=logging.ERROR,
                    )
                else:
                    ray.init(address=self.options.address, log_to_driver=False, logging_level=logging.ERROR)
            except Exception as e:  # Ray raises ConnectionError, RuntimeError, ValueError...
                self._restore()
                where = self.options.address or "this machine"
                raise RayRunError(f"cannot start or join Ray at {where}: {type(e).__name__}: {e}") from e
            self.started_here = True
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        resources = ray.cluster_resources()
        self.gpus = float(resources.get("GPU", 0.0))
        self.cpus = float(resources.get("CPU", 0.0))
        self.hosts = {
            node["NodeID"]: str(node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or node["NodeID"])
            for node in ray.nodes()
            if node.get("Alive")
        }
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.started_here:
            self.ray.shutdown()
        self._restore()

    def pool_size(self) -> tuple[int, float]:
        """How many model replicas to run, and the GPUs each holds (see :class:`RayOptions`)."""
        gpus_each = self.options.gpus_per_actor
        if gpus_each is None:
            gpus_each = 1.0 if self.gpus >= 1 else 0.0
        if self.options.actors is not None:
            return self.options.actors, gpus_each
        if gpus_each > 0:
            return max(1, int(self.gpus // gpus_each)), gpus_each
        spare = max(self.options.cpus_per_actor, self.cpus - 1)
        return max(1, int(spare // self.options.cpus_per_actor)), gpus_each

    def _quiet(self) -> None:
        for name in _QUIET_LOGGERS:
            logger = logging.getLogger(name)
            self._log_levels[name] = logger.level
            logger.setLevel(logging.ERROR)

    def _restore(self) -> None:
        for name, level in self._log_levels.items():
            logging.getLogger(name).setLevel(level)
        self._log_levels.clear()


def worker_identity() -> dict[str, Any]:
    """Where the calling Ray worker runs: its node id and host name (for per-node throughput)."""
    import ray

    return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname()}
