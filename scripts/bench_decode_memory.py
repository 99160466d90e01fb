#!/usr/bin/env python
"""Decoder memory: peak resident memory of ``decode_image`` on very large images, per format and mode.

    .venv/bin/python scripts/bench_decode_memory.py
    .venv/bin/python scripts/bench_decode_memory.py --side 9400 --impl /tmp/old_images.py   # another version

For each case (a ``side`` x ``side`` image, just under Pillow's 89.5-megapixel bomb limit at 9400) the image
is written once, then decoded in a fresh child process, which reports its peak RSS (``ru_maxrss``) before and
after the decode: ``indexer`` is the indexer's call (``draft_size=224``: decoded no larger than a model needs),
``full`` a decode at full size (``draft_size=None``). ``--impl`` loads ``decode_image`` from another copy of
``indexer/images.py`` (e.g. ``git show HEAD~1:indexer/images.py > /tmp/old_images.py``), to compare versions
in one run. Prints a table on stderr and one JSON line last on stdout.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = (("PNG", "RGB"), ("PNG", "RGBA"), ("PNG", "P"), ("JPEG", "RGB"))

_CHILD = """
import importlib.util, resource, sys, time
impl, path, draft = sys.argv[1], sys.argv[2], int(sys.argv[3])
if impl:
    spec = importlib.util.spec_from_file_location("images_impl", impl)
    module = importlib.util.module_from_spec(spec)
    sys.modules["images_impl"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    decode_image = module.decode_image
else:
    from catalens.indexer.images import decode_image
data = open(path, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
decoded = decode_image(data, source=path, draft_size=draft or None)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, peak, seconds, decoded.image.size[0], decoded.image.size[1])
"""


_MAKE = """
import sys
from PIL import Image
path, fmt, mode, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
ramp = Image.linear_gradient("L").resize((side, side))
other = ramp.transpose(Image.Transpose.ROTATE_90)
image = Image.merge("RGBA", (ramp, other, ramp, other)) if mode == "RGBA" else Image.merge("RGB", (ramp, other, ramp))
if mode == "P":
    image = image.quantize(64)
image.save(path, format=fmt, **({"compress_level": 1} if fmt == "PNG" else {"quality": 90}))
"""


def make_image(path: Path, fmt: str, mode: str, side: int) -> None:
    """A compressible (gradient) image, so the file stays small while the raster is full size.

    Made in a child process: Linux carries a process's peak RSS over ``fork`` and ``exec``, so this process
    must stay small for the children's peaks to measure their decodes alone.
    """
    subprocess.run([sys.executable, "-c", _MAKE, str(path), fmt, mode, str(side)], check=True)


def measure(impl: str, path: Path, draft: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, impl, str(path), str(draft)], check=True, capture_output=True, text=True
    ).stdout.split()
    before, peak = int(out[0]) / 1024, int(out[1]) / 1024
    return {"peak_mb": round(peak, 1), "added_mb": round(peak - before, 1), "seconds": round(float(out[2]), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=9400, help="image width and height in pixels")
    parser.add_argument("--impl", default="", help="decode with this copy of indexer/images.py instead")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for fmt, mode in CASES:
            path = Path(folder) / f"{mode}.{fmt.lower()}"
            make_image(path, fmt, mode, args.side)
            for label, draft in (("indexer", 224), ("full", 0)):
                row = {"format": fmt, "mode": mode, "call": label, **measure(args.impl, path, draft)}
                results.append(row)
                print(
                    f"{fmt:5} {mode:5} {label:8} peak {row['peak_mb']:8.1f} MB  added {row['added_mb']:8.1f} MB"
                    f"  {row['seconds']:.2f} s",
                    file=sys.stderr,
                )
    print(json.dumps({"side": args.side, "impl": args.impl or "catalens.indexer.images", "results": results}))


if __name__ == "__main__":
    main()
