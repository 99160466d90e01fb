"""Everything the command line shows: JSON documents, and the tables and summaries people read.

Only the CLI prints; commands hand their results here. Reports are typed for readers and type checkers,
but the types are imported for checking only, so that showing ``--help`` imports none of them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from catalens.indexer.enrich import EnrichReport
    from catalens.indexer.finetune import FinetuneReport
    from catalens.indexer.pipeline import IndexReport
    from catalens.models.base import ModelInfo
    from catalens.models.captioning import CaptionerInfo
    from catalens.models.text_encoders import Pairing
    from catalens.models.training import EpochLog
    from catalens.search.engine import Classification, SearchResult
    from catalens.search.evaluation import EvalReport


def emit_json(payload: Any) -> None:
    """Print one JSON document (indented, non-ASCII kept)."""
    print(json.dumps(payload, indent=2, ensure_ascii=False))


def cut(text: str, width: int) -> str:
    """``text`` shortened to ``width`` characters, an ellipsis marking the cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fail(code: int, message: str) -> int:
    """Report a failure on stderr as ``catalens: message``; returns ``code`` for the caller to exit with."""
    print(f"catalens: {message}", file=sys.stderr)
    return code


def print_index_report(report: IndexReport) -> None:
    """The summary of an indexing run: counts, speed, and the first failed items with their reasons."""
    rows = [
        ("new", report.new),
        ("updated", report.updated),
        ("metadata updated", report.metadata_updated),
        ("unchanged", report.unchanged),
        ("removed", report.removed),
        ("failed", len(report.failed)),
    ]
    print(f"Indexed into {report.store} with {report.model}")
    for label, value in rows:
        print(f"  {label:<17} {value:>8}")
    speed = f", {report.images_per_second:.1f} images/s" if report.embedded else ""
    print(
        f"  {report.indexed_total} items searchable; index {report.index_factory}, generation {report.generation}; "
        f"{report.elapsed_seconds:.1f} s{speed}"
    )
    if report.ray:
        print_ray_nodes(report.ray)
    if report.failed:
        print("Failed items:")
        for failure in report.failed[:50]:
            print(f"  {failure.id}: {failure.reason}")
        if len(report.failed) > 50:
            print(f"  ... and {len(report.failed) - 50} more (see `catalens info --json`)")


def print_ray_nodes(ray: dict[str, Any]) -> None:
    """Where a Ray run's work went: the pool, then each node's items and throughput."""
    gpus = f", {ray['gpus_per_actor']:g} GPU each" if ray["gpus_per_actor"] else " on CPU"
    print(f"  Ray at {ray['address']}: {ray['actors']} model replica(s){gpus}, {ray['wall_seconds']:.1f} s")
    for node in ray["nodes"]:
        print(
            f"    {node['host']:<24} read {node['read']:>8}  processed {node['processed']:>8}  "
            f"{node['items_per_second']:>8.1f} items/s ({node['model_items_per_second']:.1f} in the model)"
        )


def describe_index(summary: dict[str, Any]) -> str:
    """One or two lines on an index generation: how it was chosen and what it measured (see ``index_summary``)."""
    if not summary or summary.get("recall_at_10") is None:
        return "not measured (published before catalens measured recall; `catalens reindex` measures it)"
    params = ", ".join(f"{k}={v}" for k, v in (summary.get("search_params") or {}).items() if v)
    per_vector = summary.get("bytes_per_vector")
    size = f", {per_vector:g} bytes/vector" if per_vector else ""
    missed = "" if summary.get("target_met") else f" (target {summary['target_recall']:g} NOT reached)"
    line = (
        f"recall@10 {summary['recall_at_10']:.3f}{missed}, {summary['latency_ms']:.2f} ms/query (p50, 1 thread)"
        f"{size}{'; ' + params if params else ''}"
    )
    if summary.get("chosen_by") == "auto" and summary.get("reason"):
        line += f"\nchosen by auto: {summary['reason']}"
    return line


def print_pass(report: EnrichReport) -> None:
    """The summary of a caption or OCR pass."""
    what = "Captioned" if report.kind == "caption" else "Read text in"
    print(
        f"{what} {report.done} items with {report.spec} ({report.up_to_date} already done, "
        f"{len(report.failed)} failed; {report.seconds:.1f} s, {report.items_per_second:.1f} items/s)"
    )
    if report.ray:
        print_ray_nodes(report.ray)
    for failure in report.failed[:20]:
        print(f"  {failure.id}: {failure.reason}")
    if len(report.failed) > 20:
        print(f"  ... and {len(report.failed) - 20} more")


def print_store_info(payload: dict[str, Any]) -> None:
    """The ``catalens info`` table, from the payload ``--json`` prints."""
    counts = payload["items"]
    print(f"Store       {payload['store']} (schema v{payload['schema_version']})")
    weights = f", weights {payload['model_digest']}" if payload.get("model_digest") else ""
    print(f"Model       {payload['model']} ({payload['dim']} dimensions{weights})")
    print(f"Items       {counts['indexed']} indexed, {counts['failed']} failed")
    generation = payload["index"]["generation"]
    built = f"generation {generation}, {payload['index']['count']} vectors" if generation else "not built yet"
    print(f"Index       {payload['index']['factory']}, {built}")
    if payload["index"].get("recall_at_10") is not None:
        print("            " + describe_index(payload["index"]).replace("\n", "\n            "))
    for kind, specs in payload["passes"].items():
        done = ", ".join(f"{n} by {spec}" for spec, n in specs.items())
        print(f"{'Captions' if kind == 'caption' else 'OCR text':<12}{done}")
        if kind == "caption" and payload.get("captions", {}).get("matched_by_hybrid") is False:
            print(" " * 12 + "hybrid ranking leaves them out: they restate the store's own vectors (--vector-captions)")
    print(f"Size        {payload['size_bytes'] / 1e6:.1f} MB")
    if payload["failures"]:
        print("Failures:")
        for failure in payload["failures"][:20]:
            print(f"  {failure['id']}: {failure['reason']}")


def print_hits(result: SearchResult, as_json: bool) -> None:
    """A page of hits: a ranked table (with ``--explain`` lines), or one JSON document."""
    from dataclasses import asdict

    from catalens.indexer.lexical import highlight_html, highlight_plain

    if as_json:
        hits = []
        for hit in result.hits:
            row = asdict(hit)
            if row["explanation"] is not None:
                fields = row["explanation"]["matched_fields"]
                row["explanation"]["matched_fields"] = {name: highlight_html(text) for name, text in fields.items()}
            hits.append(row)
        emit_json({"generation": result.generation, "k": result.k, "offset": result.offset, "hits": hits})
        return
    if not result.hits:
        print("No results.")
        return
    print(f"{'#':>3}  {'score':>6}  {'id':<32} {'title':<32} {'category':<14} {'price':>9}")
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        price = f"{hit.price:.2f}" if hit.price is not None else ""
        print(
            f"{rank:>3}  {hit.score:6.3f}  {cut(hit.id, 32):<32} {cut(hit.title or '', 32):<32} "
            f"{cut(hit.category or '', 14):<14} {price:>9}"
        )
        why = hit.explanation
        if why is not None:
            vector = f"vector #{why.vector_rank} ({why.vector_score:.3f})" if why.vector_rank else "vector -"
            lexical = f"lexical #{why.lexical_rank} ({why.lexical_score:.2f})" if why.lexical_rank else "lexical -"
            print(f"{'':13}{' · '.join([vector, lexical] if why.mode != 'lexical' else [lexical])}")
            for name, text in why.matched_fields.items():
                print(f"{'':13}{name}: {cut(' '.join(highlight_plain(text).split()), 90)}")


def print_classifications(results: Sequence[Classification], image: str | None) -> None:
    """Predicted labels per item (or for the image file ``image``), most probable first."""
    print(f"{'id':<40} {'label':<24} {'probability':>11}")
    for result in results:
        for rank, prediction in enumerate(result.predictions):
            name = cut(result.id or image or "", 40) if rank == 0 else ""
            print(f"{name:<40} {cut(prediction.label, 24):<24} {prediction.probability:11.3f}")


def print_eval(reports: Sequence[EvalReport]) -> None:
    """Metrics side by side (stores or modes), the change when there are two, then per-label scores."""
    names = [f"{cut(r.model, 28 - len(r.mode) - 3)} [{r.mode}]" for r in reports]
    header = f"{'metric':<22}" + "".join(f"{name:>30}" for name in names)
    header += "  change" if len(reports) == 2 else ""
    first = reports[0]
    print(f"Set: {first.queries} retrieval queries, {first.classified} classified items")
    print(header)
    rows = [("retrieval " + m, [r.retrieval.get(m) for r in reports]) for m in first.retrieval]
    rows += [("zero-shot " + m, [r.classification.get(m) for r in reports]) for m in first.classification]
    for name, values in rows:
        cells = "".join(f"{v:>30.3f}" if v is not None else f"{'-':>30}" for v in values)
        change = ""
        if len(values) == 2 and values[0] is not None and values[1] is not None:
            change = f"  {values[1] - values[0]:+.3f}"
        print(f"{name:<22}{cells}{change}")
    shown: set[str] = set()
    for report in reports:
        if report.per_label and report.store not in shown:  # zero-shot results do not depend on the mode
            shown.add(report.store)
            print(f"\nPer label ({report.model}):")
            print(f"  {'label':<24} {'precision':>9} {'recall':>9} {'support':>8}")
            for label, stats in report.per_label.items():
                print(f"  {cut(label, 24):<24} {stats.precision:9.3f} {stats.recall:9.3f} {stats.support:8d}")
        for reason in report.skipped[:20]:
            print(f"skipped ({report.model}): {reason}")


def print_epoch(log: EpochLog) -> None:
    """One fine-tuning epoch, on stderr (progress, not the result)."""
    print(
        f"epoch {log.epoch}: loss {log.train_loss:.4f}, held-out mean recall {log.heldout_score:.3f} "
        f"({log.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def print_finetune(report: FinetuneReport, store: str) -> None:
    """Held-out metrics before and after fine-tuning, and how to re-embed ``store`` with the checkpoint."""
    print(f"Fine-tuned {report.model} on {report.train_pairs} pairs; {report.heldout_pairs} held out")
    print(f"{'held-out metric':<16} {'before':>8} {'after':>8}")
    for name, value in report.before.items():
        print(f"{name:<16} {value:8.3f} {report.after[name]:8.3f}")
    print(f"Best epoch {report.best_epoch}; checkpoint {report.checkpoint}")
    print(f"Re-embed the store with it: catalens index SOURCE --store {store} --model {report.checkpoint} --rebuild")
    for reason in report.skipped[:20]:
        print(f"skipped {reason}")


def print_captioners(captioners: Sequence[CaptionerInfo], engines: Sequence[str], default_ocr: str) -> None:
    """The captioner specs and OCR engines ``index --caption``, ``caption`` and ``--ocr`` accept."""
    print("Captioners (catalens index --caption SPEC, catalens caption --captioner SPEC):")
    width = max(len(c.name) for c in captioners)
    for captioner in captioners:
        print(f"  {captioner.name:<{width}}  {captioner.description}")
    print(f"OCR engines (--ocr ENGINE; default {default_ocr}): {', '.join(engines)}")


def print_models(infos: Sequence[ModelInfo], pairings: Sequence[Pairing]) -> None:
    """The model spec grammar, each architecture with its pretrained tags, and the text-encoder pairings."""
    print(
        "Model specs: auto (default), catalens-mini (shipped, offline), ARCH:TAG (pretrained), ARCH:random, "
        "ARCH:/path/weights, hf-hub:ORG/NAME, DIR, config.json"
    )
    for info in infos:
        tags = ", ".join(info.tags) if info.tags else "(no pretrained tags; use ARCH:random or a checkpoint)"
        print(f"  {info.arch:<40} {tags}")
    print("\nText encoders for queries (--text-encoder SPEC), each paired with the image model it was aligned to:")
    for pairing in pairings:
        print(f"  {pairing.text:<54} -> {pairing.image:<34} {pairing.languages}")
