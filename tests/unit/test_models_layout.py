"""The model layer imports no torch at import (the package-wide cycle and layering checks: test_layout.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models"


def test_importing_every_family_and_parsing_specs_needs_no_torch() -> None:
    code = (
        "import sys, catalens.models as m\n"
        "from catalens.models import captioning, ocr, text_encoders\n"
        "captioning.parse_captioner_spec('blip'); captioning.list_captioners()\n"
        "text_encoders.parse_text_encoder_spec('clip-ViT-B-32-multilingual-v1'); text_encoders.list_pairings()\n"
        "ocr.parse_ocr_spec('tesseract'); ocr.list_ocr_engines()\n"
        "heavy = [n for n in ('torch', 'transformers', 'open_clip') if n in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
