"""open_clip text towers exported to ONNX and run by ONNX Runtime: the fast path for text queries on CPU.

A text query is a handful of tokens; torch's per-operator dispatch costs more than the arithmetic at that size.
The causal text tower of ``open_clip.CLIP`` (see :mod:`models.openclip_text`) is exported once, with
``torch.onnx.export(..., dynamo=True)``, with a dynamic batch and a dynamic sequence axis, and ONNX Runtime runs
it at the texts' true token length: measured on a 2-core CPU for one ViT-B-32 query, about 11 ms against
35-40 ms for trimmed torch and 65-95 ms for open_clip's padded ``encode_text``, with the same vectors (about
1e-6). (The older tracing exporter bakes the sequence length into the attention reshapes, so it cannot be used.)

Exporting takes seconds (10-50 s on 2 cores), so the file is cached on disk under a key made of the model spec,
the tower's structure, a hash of its weights and the torch / onnx / onnxscript versions. An entry is a directory
written under a temporary name and renamed into place, so readers never see half a file; an entry that ONNX
Runtime cannot open, or whose vectors do not match torch's on a probe, is exported again. Anything that goes
wrong raises :class:`TextExportError`, and the caller (:mod:`models.openclip`) falls back to the torch path.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from catalens.models.errors import ModelError
from catalens.models.openclip_text import encode_text_trimmed, trimmable, trimmed_tokens

log = logging.getLogger(__name__)

#: Bump when the exported graph changes meaning (inputs, outputs, wrapper), so old cache entries are not used.
FORMAT_VERSION = 1
MODEL_FILE = "text_tower.onnx"
#: Text-tower transformers smaller than this (parameters) stay on torch by default: the export costs seconds to
#: minutes and saves only a few milliseconds per query on them. ViT-B-32's tower has 38M, ViT-S-32's 21M,
#: ViT-S-32-alt's 8M (torch) and the test suite's tiny towers far less.
MIN_AUTO_PARAMETERS = 20_000_000
#: ONNX Runtime threads for one query (at most the machine's cores). On this 2-core machine, quiet, ViT-B-32's
#: tower took p50 14.7 ms on 2 threads against 22.3 ms on 1 (scripts/bench_query.py, 2026-11-26); with other
#: processes busy on both cores 1 thread had measured faster, so a loaded host may want fewer.
DEFAULT_THREADS = min(2, os.cpu_count() or 1)
#: Texts the exported graph is checked against torch with before it is used (an empty text, a long one).
PROBE_TEXTS = ("", "a photo of a red leather handbag with a gold clasp", "XR-2040")
PROBE_ATOL = 1e-4
_TOWER_PREFIXES = ("token_embedding.", "positional_embedding", "transformer.", "ln_final.", "text_projection")


class TextExportError(ModelError):
    """The text tower could not be exported to ONNX or run by ONNX Runtime (the torch path is used instead)."""


class _TextTower(torch.nn.Module):
    """``open_clip.CLIP.encode_text`` (unnormalised) over tokens already cut to their true length.

    The positional embedding and the causal mask are sliced to the input's length, so the exported graph takes
    any length from 2 to the context length.
    """

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.token_embedding = model.token_embedding
        self.transformer = model.transformer
        self.ln_final = model.ln_final
        self.positional_embedding = model.positional_embedding
        self.register_buffer("attn_mask", model.attn_mask, persistent=False)
        self.text_projection = model.text_projection
        self.pool_type = str(model.text_pool_type)
        self.eos_id = getattr(model, "text_eos_id", None)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        length = tokens.shape[1]
        positions, mask = cast(torch.Tensor, self.positional_embedding), cast(torch.Tensor, self.attn_mask)
        x = self.token_embedding(tokens) + positions[:length]
        x = self.transformer(x, attn_mask=mask[:length, :length])
        x = self.ln_final(x)
        x = text_global_pool(x, tokens, self.pool_type, eos_token_id=self.eos_id)
        projection = self.text_projection
        if projection is None:
            return x
        return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def onnx_available() -> str | None:
    """Why the ONNX path cannot be used in this environment, or ``None`` when it can."""
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError as e:
            return f"{module} is not installed ({e})"
    return None


def worth_exporting(model: Any) -> bool:
    """Whether ``model``'s text tower is exportable and big enough for the export to pay for itself."""
    if not trimmable(model):
        return False
    return sum(p.numel() for p in model.transformer.parameters()) >= MIN_AUTO_PARAMETERS


def default_cache_root(cache_dir: str | None) -> Path:
    """Where exported towers are kept: ``CACHE_DIR/catalens-onnx-text``, else ``$XDG_CACHE_HOME/catalens``."""
    if cache_dir:
        return Path(cache_dir).expanduser() / "catalens-onnx-text"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "catalens" / "onnx-text"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "none"


def cache_key(spec: str, model: Any) -> str:
    """A key that changes with the spec, the tower's structure or weights, and the exporter's versions."""
    digest = hashlib.sha256()
    heads = [getattr(m, "num_heads", None) for m in model.transformer.modules() if hasattr(m, "num_heads")]
    tower = _TextTower(model)
    parts = [
        f"format={FORMAT_VERSION}",
        f"spec={spec}",
        f"torch={torch.__version__}",
        f"onnx={_version('onnx')}",
        f"onnxscript={_version('onnxscript')}",
        f"pool={tower.pool_type}",
        f"eos={tower.eos_id}",
        f"heads={heads}",
        repr(tower),
    ]
    digest.update("\n".join(parts).encode())
    for name, tensor in sorted(model.state_dict().items()):
        if name.startswith(_TOWER_PREFIXES):
            array = tensor.detach().cpu().contiguous().numpy()
            digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
            digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:32]


def export_text_tower(model: Any, directory: Path) -> float:
    """Export ``model``'s text tower into ``directory/text_tower.onnx``; returns the seconds it took.

    Raises:
        TextExportError: the exporter failed.
    """
    tower = _TextTower(model).eval()
    context = int(model.positional_embedding.shape[0])
    example = torch.full((2, min(4, context)), 1, dtype=torch.long)
    example[:, 0], example[:, -1] = 0, 2  # the values do not matter to the graph, only the dtype and shape
    dynamic = {0: torch.export.Dim("batch", min=1, max=65536), 1: torch.export.Dim("length", min=2, max=context)}
    started = time.perf_counter()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                tower,
                (example,),
                dynamo=True,
                input_names=["tokens"],
                output_names=["features"],
                dynamic_shapes=({0: dynamic[0], 1: dynamic[1]},),
                optimize=True,
                verbose=False,
                report=False,
            )
            if program is None:
                raise TextExportError("torch.onnx.export returned no program")
            program.save(str(directory / MODEL_FILE))
    except TextExportError:
        raise
    except Exception as e:  # the exporter raises many kinds; all mean "no ONNX file"
        raise TextExportError(f"exporting the text tower failed: {type(e).__name__}: {e}") from e
    return time.perf_counter() - started


@dataclass(frozen=True)
class ExportReport:
    """How a :class:`OnnxTextEncoder` came to be (for logs and benchmarks).

    Attributes:
        path: the ``.onnx`` file the session runs.
        exported: whether it was exported now (else it came from the cache).
        export_s: seconds the export took (0 when cached).
        session_s: seconds to open the ONNX Runtime session and check it against torch.
    """

    path: Path
    exported: bool
    export_s: float
    session_s: float


class OnnxTextEncoder:
    """Runs an exported text tower: token ids (already cut to their true length) in, unnormalised features out.

    Thread-safe: ONNX Runtime sessions may be run from several threads at once.
    """

    def __init__(self, path: Path, threads: int = DEFAULT_THREADS) -> None:
        """Open ``path`` in an ONNX Runtime CPU session with ``threads`` intra-op threads.

        Raises:
            TextExportError: ONNX Runtime cannot open the file (missing, truncated or corrupt).
        """
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail / InvalidProtobuf / NoSuchFile types
            raise TextExportError(f"ONNX Runtime cannot open {path}: {type(e).__name__}: {e}") from e
        self.path = path
        self.threads = max(1, threads)
        #: How this encoder came to be (set by :func:`load_or_export`).
        self.report: ExportReport | None = None

    def __call__(self, tokens: np.ndarray) -> np.ndarray:
        """Features for ``(n, length)`` int64 token ids; ``(n, dim)`` float32."""
        ids = np.ascontiguousarray(tokens, dtype=np.int64)
        return np.asarray(self._session.run(None, {"tokens": ids})[0], dtype=np.float32)


def _matches_torch(runner: OnnxTextEncoder, model: Any, tokenizer: Any) -> bool:
    """Whether ``runner`` gives the padded torch vectors on :data:`PROBE_TEXTS` (normalised, to 1e-4)."""
    tokens = tokenizer(list(PROBE_TEXTS))
    with torch.inference_mode():
        expected = torch.nn.functional.normalize(encode_text_trimmed(model, tokens).float(), dim=-1).numpy()
    got = runner(trimmed_tokens(model, tokens).numpy())
    got = got / np.maximum(np.linalg.norm(got, axis=-1, keepdims=True), 1e-12)
    return got.shape == expected.shape and bool(np.allclose(got, expected, atol=PROBE_ATOL, rtol=0))


def load_or_export(
    spec: str, model: Any, tokenizer: Any, cache_root: Path, threads: int = DEFAULT_THREADS
) -> tuple[OnnxTextEncoder, ExportReport]:
    """The ONNX encoder for ``model``'s text tower, from the cache or exported into it now.

    A cached entry that cannot be opened or gives other vectors than torch is removed and exported again.

    Raises:
        TextExportError: the tower cannot be exported, or the exported graph does not match torch.
    """
    if not trimmable(model):
        raise TextExportError("only open_clip.CLIP causal text towers with argmax/eos pooling are exported")
    entry = cache_root / cache_key(spec, model)
    path = entry / MODEL_FILE
    if path.is_file():
        started = time.perf_counter()
        try:
            runner = OnnxTextEncoder(path, threads)
            if _matches_torch(runner, model, tokenizer):
                runner.report = ExportReport(path, False, 0.0, time.perf_counter() - started)
                return runner, runner.report
            log.warning("the cached ONNX text tower %s gives other vectors than torch; exporting it again", path)
        except TextExportError as e:
            log.warning("the cached ONNX text tower is unusable (%s); exporting it again", e)
    shutil.rmtree(entry, ignore_errors=True)  # an unusable entry, or the remains of one
    export_s = _export_atomically(model, entry)
    started = time.perf_counter()
    runner = OnnxTextEncoder(path, threads)
    if not _matches_torch(runner, model, tokenizer):
        shutil.rmtree(entry, ignore_errors=True)
        raise TextExportError("the exported text tower gives other vectors than torch")
    runner.report = ExportReport(path, True, export_s, time.perf_counter() - started)
    return runner, runner.report


def _export_atomically(model: Any, entry: Path) -> float:
    """Export into a temporary sibling directory, then rename it to ``entry`` (another process may win)."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    except OSError as e:
        raise TextExportError(f"cannot write the ONNX cache under {entry.parent}: {e}") from e
    try:
        export_s = export_text_tower(model, staging)
        try:
            staging.rename(entry)
        except OSError:
            if not (entry / MODEL_FILE).is_file():  # not a concurrent writer's finished entry: a real failure
                raise
    except OSError as e:
        raise TextExportError(f"cannot write the ONNX cache entry {entry}: {e}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export_s


def choose_text_encoder(
    spec: str, model: Any, tokenizer: Any, runtime: str, device: str, cache_dir: str | None
) -> OnnxTextEncoder | None:
    """The ONNX text encoder ``runtime`` asks for, or ``None`` for the torch path (with one warning on failure).

    Args:
        spec: the model's canonical spec (part of the cache key).
        model: the loaded open_clip model, in fp32.
        tokenizer: its tokenizer (for the probe against torch).
        runtime: ``"auto"``, ``"onnx"`` or ``"torch"`` (see :class:`models.base.LoadOptions`); ``"auto"`` yields
            to the ``CATALENS_TEXT_RUNTIME`` environment variable.
        device: the torch device the model runs on; ONNX Runtime is only used in place of CPU torch.
        cache_dir: the load options' cache directory (see :func:`default_cache_root`).
    """
    if runtime == "auto":
        runtime = os.environ.get("CATALENS_TEXT_RUNTIME", "").strip().lower() or "auto"
        if runtime not in ("auto", "onnx", "torch"):
            log.warning("CATALENS_TEXT_RUNTIME=%r is not auto, onnx or torch; using auto", runtime)
            runtime = "auto"
    if runtime == "torch" or device != "cpu" or not trimmable(model):
        return None
    if model.positional_embedding.dtype != torch.float32:
        return None
    if runtime == "auto" and not worth_exporting(model):
        return None
    missing = onnx_available()
    if missing is not None:
        log.warning("text queries run on torch, not ONNX Runtime: %s", missing)
        return None
    try:
        runner, report = load_or_export(spec, model, tokenizer, default_cache_root(cache_dir))
    except TextExportError as e:
        log.warning("text queries run on torch, not ONNX Runtime: %s", e)
        return None
    if report.exported:
        log.info("exported the text tower of %s to %s in %.1f s", spec, report.path, report.export_s)
    return runner
