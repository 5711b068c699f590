"""Where the fuzz suite writes its counts (`FUZZ_COUNTS`, or a file in the temp directory)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

COUNTS_FILE = Path(
    os.environ.get("FUZZ_COUNTS", Path(tempfile.gettempdir()) / "spark-hub-fuzz-counts.json")
)
