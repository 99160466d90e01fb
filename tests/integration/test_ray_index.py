"""``catalens index --ray`` on a local Ray with two CPUs: the same store as a local run, committed by one writer.

One Ray is started for the module (starting it costs seconds); every run joins it, as a process that already
called ``ray.init`` does. The two-node cluster, a worker killed mid-run and a killed driver are in
``tests/e2e/test_ray_cluster.py`` and ``tests/e2e/test_kill_loop.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from catalens.indexer.distributed import RayOptions
from catalens.indexer.distributed.reach import check_reach, explain_unreadable
from catalens.indexer.distributed.session import RaySession
from catalens.indexer.errors import RayUnavailableError
from catalens.indexer.pipeline import IndexOptions, index_catalog
from catalens.indexer.store import CatalogStore
from catalens.search.cli import EXIT_CLUSTER, EXIT_OK, main
from catalens.search.cli.render import print_ray_nodes
from tests.conftest import pattern_image

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)  # never another Ray
    yield
    ray.shutdown()


def store_contents(path: Path) -> tuple[dict[str, tuple[str, str | None]], dict[str, np.ndarray], set[tuple[str, str]]]:
    """Items (id → status, content hash), vectors by id, and failures (id, reason) of a store."""
    with CatalogStore.open(path) as store:
        states = store.item_states()
        keys, vectors = store.vectors_for(s.key for s in states.values())
        by_key = {s.key: s.id for s in states.values()}
        failures = {(f.id, f.reason) for f in store.failures(1000)}
    items = {s.id: (s.status, s.content_hash) for s in states.values()}
    return items, {by_key[int(k)]: v for k, v in zip(keys, vectors, strict=True)}, failures


def test_a_catalog_indexed_on_ray_matches_a_local_run(
    local_ray: None,
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    bad_files: Callable[[Path], dict[str, str]],
) -> None:
    catalog = make_catalog(14, size=(160, 120))
    expected = bad_files(catalog)
    pattern_image(3, (160, 120)).save(catalog / "copy-of-3.png")  # another format, decoded at full size

    local = index_catalog(catalog, tmp_path / "local", IndexOptions(model=tiny_spec, batch_size=4))
    on_ray = index_catalog(catalog, tmp_path / "ray", IndexOptions(model=tiny_spec, batch_size=4, ray=RayOptions()))

    local_items, local_vectors, local_failures = store_contents(tmp_path / "local")
    ray_items, ray_vectors, ray_failures = store_contents(tmp_path / "ray")
    assert ray_items == local_items and len(ray_items) == 15 + len(expected)
    assert ray_vectors.keys() == local_vectors.keys() and len(ray_vectors) == 15
    for item_id, vector in local_vectors.items():
        np.testing.assert_allclose(ray_vectors[item_id], vector, atol=1e-5)
    assert ray_failures == local_failures
    assert {f.id: f.reason for f in on_ray.failed} == {f.id: f.reason for f in local.failed}
    for name, fragment in expected.items():
        assert fragment in dict(ray_failures)[name]
    assert (on_ray.new, on_ray.embedded, on_ray.indexed_total) == (local.new, local.embedded, 15)

    # Where the work went: every item read on a node, every embedded one counted against a model replica.
    assert on_ray.ray is not None and local.ray is None
    assert on_ray.ray["actors"] >= 1 and on_ray.ray["gpus_per_actor"] == 0
    nodes = on_ray.ray["nodes"]
    assert sum(n["read"] for n in nodes) == 15 + len(expected)
    assert sum(n["processed"] for n in nodes) == 15
    assert all(n["host"] and n["model_seconds"] >= 0 for n in nodes)

    # A second run on Ray plans as a local one does: only the failed items are tried again, and fail again.
    again = index_catalog(catalog, tmp_path / "ray", IndexOptions(batch_size=4, ray=RayOptions()))
    assert (again.new, again.updated, again.embedded, again.unchanged) == (0, 0, 0, 15)
    assert {f.id for f in again.failed} == set(expected)
    assert again.ray is not None and sum(n["read"] for n in again.ray["nodes"]) == len(expected)
    assert store_contents(tmp_path / "ray")[0] == ray_items


def test_a_parquet_manifest_on_ray_reports_each_nodes_throughput(
    local_ray: None,
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    catalog = make_catalog(6)
    rows = [
        {"id": f"sku-{i}", "image": str(catalog / f"item-{i:03d}.jpg"), "title": f"Shirt {i}", "price": 10.0 + i}
        for i in range(6)
    ] + [{"id": "sku-bad", "image": str(catalog / "notes.jpg"), "title": "Notes", "price": 1.0}]
    (catalog / "notes.jpg").write_text("not a picture")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "catalog.parquet")

    args = ["index", str(tmp_path / "catalog.parquet"), "--store", str(tmp_path / "s"), "--model", tiny_spec]
    assert main([*args, "--ray", "--ray-actors", "1", "--batch-size", "4", "--quiet", "--json"]) == EXIT_OK

    report = json.loads(capsys.readouterr().out)
    assert report["new"] == 6 and report["failures"][0]["id"] == "sku-bad"
    assert report["failures"][0]["reason"] == "not an image: the file contains text"
    assert report["ray"]["actors"] == 1
    (node,) = report["ray"]["nodes"]
    assert node["read"] == 7 and node["processed"] == 6
    assert node["items_per_second"] > 0 and node["model_items_per_second"] > 0
    with CatalogStore.open(tmp_path / "s") as store:
        stored = store.get_items_by_id(["sku-0", "sku-2"])
    assert stored["sku-2"].title == "Shirt 2" and stored["sku-2"].price == 12.0

    print_ray_nodes(report["ray"])  # what people read instead of the JSON
    table = capsys.readouterr().out
    assert "Ray at local: 1 model replica(s) on CPU" in table and "processed        6" in table


def test_inputs_a_node_cannot_read_are_named_before_the_pass_and_explained_after(
    local_ray: None, tmp_path: Path, make_catalog: Callable[..., Path]
) -> None:
    catalog = make_catalog(2)
    readable = [str(p) for p in sorted(catalog.iterdir())]
    with RaySession(RayOptions()) as session:
        assert check_reach(session, readable) == []
        assert check_reach(session, ["https://cdn.example.com/a.jpg"]) == []  # URLs are each worker's to fetch
        (note,) = check_reach(session, [*readable, "/mnt/not-mounted-here/a.jpg"])
    assert "cannot read 1 of 3 sampled inputs (e.g. /mnt/not-mounted-here/a.jpg)" in note
    assert "every node mounts at the same path" in note

    # A file the driver can read that a node could not is explained; one missing everywhere keeps its reason.
    explained = explain_unreadable(readable[0], "file not found", "gpu-7")
    assert explained.startswith("file not found on Ray node gpu-7, although the driver can read it")
    assert explain_unreadable(str(tmp_path / "nowhere.jpg"), "file not found", "gpu-7") == "file not found"


def test_without_ray_installed_ray_runs_say_how_to_install_it(
    tmp_path: Path,
    tiny_spec: str,
    make_catalog: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    catalog = make_catalog(2)
    with pytest.raises(RayUnavailableError, match=r"pip install 'catalens\[ray\]'"):
        index_catalog(catalog, tmp_path / "s", IndexOptions(model=tiny_spec, ray=RayOptions()))
    assert main(["index", str(catalog), "--store", str(tmp_path / "s"), "--ray", "--quiet"]) == EXIT_CLUSTER
    assert "pip install 'catalens[ray]'" in capsys.readouterr().err
