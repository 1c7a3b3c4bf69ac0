"""Ranges every number a user gives must fall in: finite, and small enough that a typo (an
extra zero, ``.inf``, ``.nan``) is refused up front instead of hanging a run or running out of
memory an hour in."""
from __future__ import annotations

import math
import re

MAX_SIDE = 16384          # px per side of an input (16K; full Cityscapes is 1024x2048)
MAX_BATCH = 1024
MAX_SCALE = 8.0           # multi-scale evaluation factor
MAX_SECONDS = 86400.0     # any duration: a day
MAX_SUITE_BYTES = 1 << 20         # a suite file
MAX_SUITE_NODES = 100_000         # YAML nodes after aliases are expanded (alias bombs)

# a name that becomes a file or folder (suite names, baseline names): no separator, no '..'
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def finite_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and \
        math.isfinite(value)
