"""How a pass runs on Ray (:class:`RayOptions`) and what each node did in it (:class:`NodeThroughput`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: ``--ray`` with no address: start a Ray on this machine for the run, and stop it afterwards.
LOCAL = "local"


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a pass runs on Ray.

    Attributes:
        address: ``None`` starts a local Ray on this machine for the run (stopped afterwards); ``"auto"``,
            ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` joins an existing cluster. A process that already called
            ``ray.init`` is used as it is.
        actors: model replicas in the actor pool; ``None``: one per GPU when the cluster has GPUs, else one
            per ``cpus_per_actor`` CPUs, keeping one CPU for reading and decoding (at least one).
        gpus_per_actor: GPUs each replica holds; ``None``: 1 when the cluster has GPUs, else 0.
        cpus_per_actor: CPUs each replica holds (its torch threads when it runs on CPU).
        read_cpus: the CPU share one fetch-and-decode task holds; fetching is mostly waiting, so less than one.
        num_cpus: CPUs a local Ray may use (``None``: every core); ignored when joining a cluster.
    """

    address: str | None = None
    actors: int | None = None
    gpus_per_actor: float | None = None
    cpus_per_actor: float = 1.0
    read_cpus: float = 0.5
    num_cpus: int | None = None

    @classmethod
    def from_cli(cls, value: str | None, **overrides: Any) -> RayOptions:
        """The options ``--ray [ADDRESS]`` asks for (``LOCAL`` for a bare ``--ray``)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        return cls(address=None if value in (None, LOCAL) else value, **given)


@dataclass
class NodeThroughput:
    """What one Ray node did in a run.

    Attributes:
        node_id: Ray's id of the node.
        host: its host name (or IP address).
        read: items its CPU tasks read and decoded (or found unchanged, or failed to read).
        processed: items its model replicas embedded, captioned or read text in.
        model_seconds: seconds its replicas spent in the model, all replicas together.
    """

    node_id: str
    host: str
    read: int = 0
    processed: int = 0
    model_seconds: float = 0.0

    def to_dict(self, wall_seconds: float) -> dict[str, Any]:
        """The node's figures; ``items_per_second`` is over the run's wall time, what the node contributed."""
        return {
            "node_id": self.node_id,
            "host": self.host,
            "read": self.read,
            "processed": self.processed,
            "model_seconds": round(self.model_seconds, 3),
            "items_per_second": round(self.processed / wall_seconds, 2) if wall_seconds > 0 else 0.0,
            "model_items_per_second": round(self.processed / self.model_seconds, 2) if self.model_seconds > 0 else 0.0,
        }


@dataclass
class RaySummary:
    """A Ray run's figures for the report: the cluster it ran on and each node's share of the work."""

    address: str
    actors: int
    gpus_per_actor: float
    nodes: dict[str, NodeThroughput] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def node(self, node_id: str, host: str) -> NodeThroughput:
        """The node's counters, created on first use."""
        if node_id not in self.nodes:
            self.nodes[node_id] = NodeThroughput(node_id, host)
        return self.nodes[node_id]

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "actors": self.actors,
            "gpus_per_actor": self.gpus_per_actor,
            "wall_seconds": round(self.wall_seconds, 3),
            "nodes": [n.to_dict(self.wall_seconds) for n in sorted(self.nodes.values(), key=lambda n: n.host)],
        }
