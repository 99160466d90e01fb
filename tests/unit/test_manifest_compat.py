"""``manifest.json`` across versions: checksums are optional and top-level, so old and new readers agree."""

from __future__ import annotations

import json

from catalens.indexer.store import IndexState, StoreManifest

OLD = {
    "schema_version": 2,
    "model": "m",
    "dim": 8,
    "index_factory": "Flat",
    "created_at": "2026-01-01T00:00:00Z",
    "index": {
        "generation": 3,
        "file": "index/gen-000003.faiss",
        "factory": "Flat",
        "count": 5,
        "built_at": "x",
        "seq": 7,
    },
}


def test_manifest_from_before_checksums_loads_without_them() -> None:
    manifest = StoreManifest.from_json(json.dumps(OLD))
    assert manifest.index is not None and manifest.index.generation == 3
    assert manifest.previous_index is None and manifest.checksums == {}
    assert manifest.checksum_of(manifest.index) is None


def test_new_manifest_keeps_the_index_entry_the_old_reader_parses() -> None:
    state = StoreManifest.from_json(json.dumps(OLD)).index
    assert state is not None
    new = StoreManifest(2, "m", 8, "Flat", "t", state, state, {state.file: "crc32:0000abcd"})
    raw = json.loads(new.to_json())
    assert IndexState(**raw["index"]) == state  # exactly what a reader before checksums does
    assert StoreManifest.from_json(new.to_json()) == new


def test_index_keys_from_a_newer_catalens_are_ignored() -> None:
    newer = json.loads(json.dumps(OLD))
    newer["index"]["shards"] = 4
    newer["something_new"] = True
    manifest = StoreManifest.from_json(json.dumps(newer))
    assert manifest.index is not None and manifest.index.count == 5
