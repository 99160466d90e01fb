"""``catalens caption``, ``ocr`` and ``captioners``: the enrichment passes over an existing store.

``catalens index --caption/--ocr`` runs the same passes through :func:`run_passes`. Which models a pass
needs (the attribute captioner classifies with the store's own model) is decided by
:func:`catalens.indexer.enrich.enrich_store`, not here: this module only maps options.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from catalens.search.cli.exits import EXIT_OK
from catalens.search.cli.parsing import add_caption_options, add_ray_options, fraction, ray_options
from catalens.search.cli.render import emit_json, print_captioners, print_pass

if TYPE_CHECKING:
    from catalens.indexer.enrich import EnrichReport
    from catalens.indexer.pipeline import ProgressSink
    from catalens.search.cli.parsing import Commands


def register_caption(commands: Commands) -> None:
    """Add ``catalens caption``."""
    caption = commands.add_parser(
        "caption",
        help="caption a store's images (incremental: only items not yet captioned by this captioner)",
    )
    caption.add_argument("--store", required=True)
    caption.add_argument("--captioner", required=True, metavar="SPEC", help="see `catalens captioners`")
    add_caption_options(caption)
    caption.add_argument("--redo", action="store_true", help="caption every item again")
    caption.add_argument("--json", action="store_true")
    caption.add_argument("--quiet", action="store_true", help="no progress bars")
    add_ray_options(caption)
    caption.set_defaults(handler=run_caption)


def register_ocr(commands: Commands) -> None:
    """Add ``catalens ocr``."""
    ocr = commands.add_parser("ocr", help="read the text in a store's images (incremental)")
    ocr.add_argument("--store", required=True)
    ocr.add_argument("--engine", default="default", help="rapidocr (default) or tesseract")
    ocr.add_argument("--min-confidence", type=fraction, help="drop words read with less confidence (0..1)")
    ocr.add_argument("--redo", action="store_true", help="read every item again")
    ocr.add_argument("--json", action="store_true")
    ocr.add_argument("--quiet", action="store_true", help="no progress bars")
    add_ray_options(ocr)
    ocr.set_defaults(handler=run_ocr)


def register_captioners(commands: Commands) -> None:
    """Add ``catalens captioners``."""
    captioners = commands.add_parser("captioners", help="list captioners and OCR engines")
    captioners.add_argument("--json", action="store_true")
    captioners.set_defaults(handler=run_captioners)


def run_passes(
    args: argparse.Namespace, captioner: str | None, ocr: str | None, progress: ProgressSink
) -> list[EnrichReport]:
    """Run the caption and OCR passes asked for on ``--store``, with the command's options; their reports.

    ``ocr`` is an engine spec, or ``"default"`` (what a bare ``--ocr`` gives) for the default engine. With
    ``--ray`` the passes read images and run their models on Ray (the attribute captioner, which works from
    the stored vectors, still runs here).
    """
    from catalens.indexer.enrich import EnrichOptions, enrich_store
    from catalens.models.captioning import CaptionOptions
    from catalens.models.ocr import DEFAULT_OCR, OcrOptions

    if not captioner and not ocr:
        return []
    caption_options = None
    if captioner:
        caption_options = CaptionOptions(
            device=args.device,
            prompt=args.caption_prompt,
            max_new_tokens=args.caption_max_tokens,
            batch_size=args.caption_batch_size,
        )
    confidence = getattr(args, "min_confidence", None)
    return enrich_store(
        args.store,
        captioner=captioner,
        caption_options=caption_options,
        ocr=DEFAULT_OCR if ocr == "default" else ocr,
        ocr_options=OcrOptions(min_confidence=confidence) if confidence is not None else OcrOptions(),
        options=EnrichOptions(
            redo=getattr(args, "redo", False),
            batch_size=getattr(args, "caption_batch_size", None),
            ray=ray_options(args),
        ),
        progress=progress,
    )


def run_caption(args: argparse.Namespace) -> int:
    """Caption the store's items not yet captioned by this captioner (all of them with ``--redo``)."""
    from catalens.search.progress import TqdmProgress

    reports = run_passes(args, args.captioner, None, TqdmProgress(enabled=not args.quiet))
    return _finish_pass(args, reports[0])


def run_ocr(args: argparse.Namespace) -> int:
    """Read the text in the store's items not yet read by this engine (all of them with ``--redo``)."""
    from catalens.search.progress import TqdmProgress

    reports = run_passes(args, None, args.engine, TqdmProgress(enabled=not args.quiet))
    return _finish_pass(args, reports[0])


def run_captioners(args: argparse.Namespace) -> int:
    """List the captioner specs and OCR engines."""
    from catalens.models.captioning import list_captioners
    from catalens.models.ocr import DEFAULT_OCR, list_ocr_engines

    captioners = list_captioners()
    engines = list_ocr_engines()
    if args.json:
        emit_json({"captioners": [vars(c) for c in captioners], "ocr": engines, "default_ocr": DEFAULT_OCR})
    else:
        print_captioners(captioners, engines, DEFAULT_OCR)
    return EXIT_OK


def _finish_pass(args: argparse.Namespace, report: EnrichReport) -> int:
    if args.json:
        emit_json(report.to_dict())
    else:
        print_pass(report)
    return EXIT_OK
