"""Shared fixtures. Real data lives in ../shared beside the checkout; tests that need it
skip with a clear reason when it is absent."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
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


@contextlib.contextmanager
def udp_listener(timeout_s: float = 0.05):
    """A UDP socket on 127.0.0.1 (a free port) collecting every datagram in a background
    thread: yields ``(port, packets)``; the list fills while the block runs."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(timeout_s)
    got: list[bytes] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                got.append(rx.recv(65536))
            except TimeoutError:
                continue

    th = threading.Thread(target=listen, daemon=True)
    th.start()
    try:
        yield rx.getsockname()[1], got
    finally:
        stop.set()
        th.join(2)
        rx.close()
