"""Open Sound Control 1.0 messages and bundles, encoded and decoded in pure Python.

Just what the VMC protocol (:mod:`mocap.vmc`) needs, with no dependency: a
:class:`Message` is an address (``"/VMC/Ext/Bone/Pos"``) and a list of arguments; a
:class:`Bundle` is a time tag and a list of messages or bundles. On the wire (OSC 1.0,
big-endian, everything padded to 4 bytes):

=========  ===================================================================
message    address string, type-tag string (``","`` then one letter per
           argument), the arguments
bundle     ``"#bundle"``, a 64-bit NTP time tag, then each element as an int32
           size followed by its bytes
``i``      int32            ``f``  float32          ``s``  string (NUL-terminated)
``b``      blob (int32 size + bytes)                ``h``  int64
``d``      float64          ``t``  time tag          ``T`` ``F`` ``N``  true,
           false, nil (no bytes)
=========  ===================================================================

A time tag is seconds since 1900-01-01 (NTP) as 32.32 fixed point; the value 1 means
"immediately". :func:`timetag_from_unix` / :func:`unix_from_timetag` convert.

Python values map to type tags as ``bool`` -> ``T``/``F``, ``int`` -> ``i`` (``h`` when it
does not fit 32 bits), ``float`` -> ``f``, ``str`` -> ``s``, ``bytes`` -> ``b``, ``None``
-> ``N``; pass a ``(tag, value)`` tuple to force a type (``("d", 0.1)``).
:func:`decode` rejects malformed packets with :class:`~mocap.errors.FileFormatError`
naming the problem.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

from .errors import FileFormatError, UsageError

__all__ = [
    "IMMEDIATELY",
    "NTP_UNIX_OFFSET",
    "Message",
    "Bundle",
    "encode",
    "decode",
    "encode_message",
    "encode_bundle",
    "timetag_from_unix",
    "unix_from_timetag",
    "iter_messages",
]

IMMEDIATELY = 1
"""The time tag that means "now" (OSC 1.0)."""
NTP_UNIX_OFFSET = 2208988800
"""Seconds from 1900-01-01 (NTP epoch) to 1970-01-01 (Unix epoch)."""

_BUNDLE_TAG = b"#bundle\x00"


@dataclass
class Message:
    """One OSC message: ``address`` (starts with ``/``) and its ``args``."""

    address: str
    args: list[Any] = field(default_factory=list)


@dataclass
class Bundle:
    """Messages (or nested bundles) to apply together at ``timetag`` (NTP 32.32)."""

    elements: list[Message | Bundle] = field(default_factory=list)
    timetag: int = IMMEDIATELY


def timetag_from_unix(t: float) -> int:
    """Unix time ``t`` (s) -> OSC time tag (64-bit NTP fixed point)."""
    sec = int(t // 1) + NTP_UNIX_OFFSET
    frac = int(round((t % 1.0) * (1 << 32)))
    if frac >= 1 << 32:
        sec, frac = sec + 1, 0
    return (sec << 32) | frac


def unix_from_timetag(tag: int) -> float:
    """OSC time tag -> Unix time (s)."""
    return (tag >> 32) - NTP_UNIX_OFFSET + (tag & 0xFFFFFFFF) / float(1 << 32)


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (-len(b) % 4)


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    if b"\x00" in raw:
        raise UsageError(f"OSC strings cannot contain NUL: {s!r}")
    return raw + b"\x00" * (4 - len(raw) % 4)  # at least one NUL, then to a multiple of 4


def _arg(a: Any) -> tuple[str, bytes]:
    if isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], str):
        tag, v = a
    elif a is True:
        return "T", b""
    elif a is False:
        return "F", b""
    elif a is None:
        return "N", b""
    elif isinstance(a, int):
        tag, v = ("i" if -(1 << 31) <= a < (1 << 31) else "h"), a
    elif isinstance(a, float):
        tag, v = "f", a
    elif isinstance(a, str):
        tag, v = "s", a
    elif isinstance(a, (bytes, bytearray)):
        tag, v = "b", bytes(a)
    else:
        # numpy scalars and the like
        try:
            import numpy as np

            if isinstance(a, np.floating):
                return "f", struct.pack(">f", float(a))
            if isinstance(a, np.integer):
                return _arg(int(a))
        except ImportError:  # pragma: no cover - numpy is a dependency
            pass
        raise UsageError(f"cannot encode {type(a).__name__} {a!r} as an OSC argument")
    if tag == "i":
        return tag, struct.pack(">i", int(v))
    if tag == "h":
        return tag, struct.pack(">q", int(v))
    if tag == "f":
        return tag, struct.pack(">f", float(v))
    if tag == "d":
        return tag, struct.pack(">d", float(v))
    if tag == "s":
        return tag, _string(str(v))
    if tag == "b":
        return tag, struct.pack(">i", len(v)) + _pad(bytes(v))
    if tag == "t":
        return tag, struct.pack(">Q", int(v))
    if tag in "TFN":
        return tag, b""
    raise UsageError(f"unknown OSC type tag {tag!r}")


def encode_message(msg: Message) -> bytes:
    """One message as OSC bytes."""
    if not msg.address.startswith("/"):
        raise UsageError(f"an OSC address starts with '/', got {msg.address!r}")
    tags, data = [","], []
    for a in msg.args:
        t, b = _arg(a)
        tags.append(t)
        data.append(b)
    return _string(msg.address) + _string("".join(tags)) + b"".join(data)


def encode_bundle(bundle: Bundle) -> bytes:
    """A bundle (elements encoded recursively) as OSC bytes."""
    out = [_BUNDLE_TAG, struct.pack(">Q", int(bundle.timetag))]
    for el in bundle.elements:
        b = encode(el)
        out.append(struct.pack(">i", len(b)))
        out.append(b)
    return b"".join(out)


def encode(packet: Message | Bundle) -> bytes:
    """A message or a bundle as OSC bytes."""
    if isinstance(packet, Bundle):
        return encode_bundle(packet)
    if isinstance(packet, Message):
        return encode_message(packet)
    raise UsageError(f"expected an osc.Message or osc.Bundle, got {type(packet).__name__}")


def _read_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise FileFormatError(f"OSC packet: unterminated string at byte {pos}")
    try:
        s = data[pos:end].decode("utf-8")
    except UnicodeDecodeError:
        raise FileFormatError(f"OSC packet: string at byte {pos} is not UTF-8") from None
    nxt = end + 1 + (-(end + 1 - pos) % 4)
    if nxt > len(data):
        raise FileFormatError(f"OSC packet: string at byte {pos} is not padded to 4 bytes")
    return s, nxt


def _need(data: bytes, pos: int, n: int, what: str) -> None:
    if pos + n > len(data):
        raise FileFormatError(f"OSC packet: {what} at byte {pos} runs past the end ({len(data)} bytes)")


def _decode_message(data: bytes) -> Message:
    address, pos = _read_string(data, 0)
    if not address.startswith("/"):
        raise FileFormatError(f"OSC packet: address must start with '/', got {address!r}")
    if pos >= len(data):  # OSC 1.0 allows a missing type-tag string: no arguments
        return Message(address, [])
    tags, pos = _read_string(data, pos)
    if not tags.startswith(","):
        raise FileFormatError(f"OSC packet {address}: type tags must start with ',', got {tags!r}")
    args: list[Any] = []
    for t in tags[1:]:
        if t == "i":
            _need(data, pos, 4, "int32")
            args.append(struct.unpack_from(">i", data, pos)[0])
            pos += 4
        elif t == "f":
            _need(data, pos, 4, "float32")
            args.append(struct.unpack_from(">f", data, pos)[0])
            pos += 4
        elif t == "h":
            _need(data, pos, 8, "int64")
            args.append(struct.unpack_from(">q", data, pos)[0])
            pos += 8
        elif t == "d":
            _need(data, pos, 8, "float64")
            args.append(struct.unpack_from(">d", data, pos)[0])
            pos += 8
        elif t == "t":
            _need(data, pos, 8, "time tag")
            args.append(struct.unpack_from(">Q", data, pos)[0])
            pos += 8
        elif t == "s":
            s, pos = _read_string(data, pos)
            args.append(s)
        elif t == "b":
            _need(data, pos, 4, "blob size")
            n = struct.unpack_from(">i", data, pos)[0]
            pos += 4
            if n < 0:
                raise FileFormatError(f"OSC packet {address}: negative blob size {n}")
            _need(data, pos, n, "blob")
            args.append(data[pos:pos + n])
            pos += n + (-n % 4)
        elif t in "TFN":
            args.append({"T": True, "F": False, "N": None}[t])
        else:
            raise FileFormatError(f"OSC packet {address}: unsupported type tag {t!r}")
    return Message(address, args)


def _decode_bundle(data: bytes) -> Bundle:
    _need(data, 8, 8, "bundle time tag")
    timetag = struct.unpack_from(">Q", data, 8)[0]
    pos = 16
    elements: list[Message | Bundle] = []
    while pos < len(data):
        _need(data, pos, 4, "bundle element size")
        n = struct.unpack_from(">i", data, pos)[0]
        pos += 4
        if n <= 0 or n % 4:
            raise FileFormatError(f"OSC bundle: element size {n} at byte {pos - 4} is not a positive multiple of 4")
        _need(data, pos, n, "bundle element")
        elements.append(decode(data[pos:pos + n]))
        pos += n
    return Bundle(elements, timetag)


def decode(data: bytes) -> Message | Bundle:
    """OSC bytes -> :class:`Message` or :class:`Bundle` (nested bundles included)."""
    data = bytes(data)
    if len(data) % 4:
        raise FileFormatError(f"OSC packet: size {len(data)} is not a multiple of 4")
    if data.startswith(_BUNDLE_TAG):
        return _decode_bundle(data)
    if not data.startswith(b"/"):
        raise FileFormatError("OSC packet: neither a message (starts with '/') nor a bundle ('#bundle')")
    return _decode_message(data)


def iter_messages(packet: Message | Bundle):
    """Every message in a packet, in order, bundles flattened."""
    if isinstance(packet, Message):
        yield packet
        return
    for el in packet.elements:
        yield from iter_messages(el)
