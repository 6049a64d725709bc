"""Subcommands of ``understudy`` that live outside :mod:`mocap.cli`.

Each module defines ``register(subparsers)`` and is listed in
:data:`mocap.cli.COMMAND_MODULES`. Modules import only argparse at the top; the work is
imported inside the command functions so ``understudy --help`` stays fast.
"""

from __future__ import annotations

import argparse
import re


def wxh(spec: str) -> tuple[int, int]:
    """argparse type of ``--resolution``: ``"640x480"`` -> ``(640, 480)``, both positive."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", spec)
    if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
        raise argparse.ArgumentTypeError(f"expected WxH such as 320x240, got {spec!r}")
    return int(m.group(1)), int(m.group(2))
