"""The former name of ``benchmarks/live_latency.py`` (issue 8's name): runs it, with the same
options.

    nice .venv/bin/python benchmarks/record_latency.py [--clip CLIP] [--resolution 640x480] [--seconds 12]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_latency import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
