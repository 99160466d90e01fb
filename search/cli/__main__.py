"""``python -m catalens.search.cli``: the same command line as the ``catalens`` console script."""

from __future__ import annotations

import sys

from catalens.search.cli import main

sys.exit(main())
