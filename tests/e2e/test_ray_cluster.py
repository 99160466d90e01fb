"""``index --ray`` on a two-node cluster simulated on this machine with Ray's own ``ray.cluster_utils.Cluster``:
the same store as a local run, and a worker node that dies in the middle of a run costs nothing.

The driver (this process) joins the cluster as ``catalens index --ray ADDRESS`` would; each node is a real
raylet with its own worker processes, so removing one kills its model replica and read tasks mid-batch.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from catalens.indexer.distributed import RayOptions
from catalens.indexer.pipeline import IndexOptions, IndexReport, index_catalog
from tests.conftest import TINY_CONFIG
from tests.integration.test_ray_index import store_contents

ray = pytest.importorskip("ray")
cluster_utils = pytest.importorskip("ray.cluster_utils")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[tuple[Any, Any]]:
    """A head node (3 CPUs) and a worker node (2 CPUs), with this process connected as the driver.

    The head can hold both model replicas (one CPU each) and still read: when the worker node dies, its
    replica restarts there and the reads it had lost are redone. (A node whose CPUs all go to replicas cannot
    redo lost reads: leave CPUs for reading on every node.)
    """
    cluster = cluster_utils.Cluster(initialize_head=True, head_node_args={"num_cpus": 3, "include_dashboard": False})
    worker = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, worker
    ray.shutdown()
    cluster.shutdown()


@pytest.fixture(scope="module")
def slow_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random model heavy enough (tens of ms a batch) that a run lasts while a node is removed."""
    config = json.loads(json.dumps(TINY_CONFIG))
    config["vision_cfg"].update({"image_size": 96, "layers": 6, "width": 192, "head_width": 64})
    path = tmp_path_factory.mktemp("models") / "slow-clip.json"
    path.write_text(json.dumps(config))
    return str(path)


class FirstCommit:
    """A progress sink that signals when the first batch of results from the cluster has been committed."""

    def __init__(self) -> None:
        self.committed = threading.Event()
        self.phase = ""

    def start(self, phase: str, total: int | None) -> None:
        self.phase = phase

    def advance(self, n: int = 1) -> None:
        if self.phase == "embedding on Ray":
            self.committed.set()

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass


def test_two_nodes_give_a_local_runs_store_even_when_one_dies_mid_run(
    two_nodes: tuple[Any, Any],
    tmp_path: Path,
    slow_spec: str,
    make_catalog: Callable[..., Path],
    bad_files: Callable[[Path], dict[str, str]],
) -> None:
    cluster, worker = two_nodes
    catalog = make_catalog(96, size=(128, 96))
    expected = bad_files(catalog)
    local = index_catalog(catalog, tmp_path / "local", IndexOptions(model=slow_spec, batch_size=4))

    sink = FirstCommit()
    outcome: dict[str, IndexReport | BaseException] = {}
    nodes_at_start = {node["NodeID"] for node in ray.nodes() if node["Alive"]}

    def run() -> None:
        options = IndexOptions(model=slow_spec, batch_size=4, ray=RayOptions(address="auto", actors=2))
        try:
            outcome["report"] = index_catalog(catalog, tmp_path / "ray", options, sink)
        except BaseException as e:  # surfaced by the assertions below
            outcome["error"] = e

    runner = threading.Thread(target=run)
    runner.start()
    assert sink.committed.wait(timeout=240), "no batch was committed"
    assert runner.is_alive(), "the run finished before the node could be removed: it proves nothing"
    cluster.remove_node(worker)  # its raylet, model replica and read tasks die mid-batch
    runner.join(timeout=400)
    assert not runner.is_alive(), "the run did not finish after losing a node"

    assert "error" not in outcome, outcome.get("error")
    report = outcome["report"]
    assert isinstance(report, IndexReport)
    assert (report.new, report.embedded, report.indexed_total) == (96, 96, 96) == (local.new, local.embedded, 96)
    assert {f.id: f.reason for f in report.failed} == {f.id: f.reason for f in local.failed}
    assert {f.id for f in report.failed} == set(expected)

    # The same store as the local run: items, hashes, vectors to 1e-5, failures and their reasons.
    local_items, local_vectors, local_failures = store_contents(tmp_path / "local")
    ray_items, ray_vectors, ray_failures = store_contents(tmp_path / "ray")
    assert ray_items == local_items and ray_failures == local_failures
    assert ray_vectors.keys() == local_vectors.keys() and len(ray_vectors) == 96
    for item_id, vector in local_vectors.items():
        np.testing.assert_allclose(ray_vectors[item_id], vector, atol=1e-5)

    # Each node's share is counted under that node (which node gets how much is Ray's scheduling).
    assert report.ray is not None and report.ray["actors"] == 2
    nodes = report.ray["nodes"]
    assert {n["node_id"] for n in nodes} <= nodes_at_start
    assert sum(n["processed"] for n in nodes) == 96
