"""Shared fixtures. Real data lives in ../shared beside the checkout; tests that need it
skip with a clear reason when it is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
FOOTAGE = SHARED / "footage"


def shared_file(rel: str) -> Path:
    """Path of a file in ../shared, or skip the test with the reason."""
    p = SHARED / rel
    if not p.exists():
        pytest.skip(f"../shared/{rel} is not present (real test data lives beside the checkout)")
    return p


def need_ffmpeg() -> None:
    if shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None:
        pytest.skip("ffmpeg/ffprobe not on PATH (scripts/setup.sh installs them)")
