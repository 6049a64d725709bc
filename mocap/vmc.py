"""The VMC protocol (Virtual Motion Capture, protocol.vmc.info): solved poses out over OSC/UDP.

We are a *Performer*: we send every bone, the root and (when there are face curves)
the blendshapes to a *Marionette* (VSeeFace, Warudo, EVMC4U, VMC4B, our Blender live
link), by default ``127.0.0.1:39539``. Each frame is sent as OSC bundles
(:mod:`mocap.osc`) holding:

==========================  =====================================================  ==================
address                     arguments                                              when
==========================  =====================================================  ==================
``/VMC/Ext/OK``             int loaded (1), calibration state (3 = calibrated),   every frame
                            calibration mode (0 = normal), tracking status
                            (1 = tracked, 0 = lost)
``/VMC/Ext/T``              float sender time, s                                   every frame
``/VMC/Ext/Root/Pos``       ``"root"``, p.xyz, q.xyzw                              every frame
``/VMC/Ext/Bone/Pos``       Unity ``HumanBodyBones`` name, p.xyz (local offset;    per bone
                            the hips' is their position), q.xyzw (local)
``/VMC/Ext/Blend/Val``      ARKit name (``jawOpen``), float 0..1                   when face curves
``/VMC/Ext/Blend/Apply``    none                                                   last, every frame
                                                                                   (ends the frame)
==========================  =====================================================  ==================

Axes: the one conversion
------------------------
VMC speaks Unity: **left-handed, +Y up, the avatar faces +Z**, bone rotations local to
the parent with every bone's rest orientation the identity (a VRM "normalised"
T-pose). Ours is right-handed, +Y up, facing +Z, and our canonical skeleton also rests
in a T-pose with identity rest rotations, so our local rotations *are* VMC's after the
change of handedness. Facing the same way with the same up, the two frames differ by
the sign of X (a performer's left hand is at +X for us, at -X in Unity):

* position ``(x, y, z)`` -> ``(-x, y, z)``;
* quaternion ``(w, x, y, z)`` -> ``(w, x, -y, -z)`` (a mirror flips the rotation sense,
  so the axis is mirrored and negated), sent in Unity's ``x, y, z, w`` order.

Both maps are their own inverse (:func:`unity_to_yup_position` /
:func:`unity_to_yup_quaternion` are the same formulas). This module is the only place
that converts; everything else stays in our frame.

Bone names: our joints carry VRM 1.0 humanBone names; Unity's ``HumanBodyBones`` are the
same words capitalised, except the thumbs, where VRM 1.0's Metacarpal / Proximal /
Distal are Unity's Proximal / Intermediate / Distal (:data:`UNITY_BONES`).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from . import osc
from .errors import UsageError

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "UNITY_BONES",
    "VRM_FROM_UNITY",
    "yup_to_unity_position",
    "yup_to_unity_quaternion",
    "unity_to_yup_position",
    "unity_to_yup_quaternion",
    "pose_packets",
    "VmcPose",
    "read_pose",
    "parse_hostport",
    "VmcSender",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 39539
"""The Marionette's usual port (VSeeFace, EVMC4U, VMC4B listen there)."""

_THUMB = {"ThumbMetacarpal": "ThumbProximal", "ThumbProximal": "ThumbIntermediate", "ThumbDistal": "ThumbDistal"}


def _unity_name(vrm: str) -> str:
    for side in ("left", "right"):
        for k, v in _THUMB.items():
            if vrm == side + k:
                return side.capitalize() + v
    return vrm[0].upper() + vrm[1:]


_CANONICAL = (
    "hips", "spine", "chest", "upperChest", "neck", "head",
    *(f"{s}{b}" for s in ("left", "right") for b in (
        "Shoulder", "UpperArm", "LowerArm", "Hand",
        "ThumbMetacarpal", "ThumbProximal", "ThumbDistal",
        *(f"{f}{p}" for f in ("Index", "Middle", "Ring", "Little") for p in ("Proximal", "Intermediate", "Distal")),
        "UpperLeg", "LowerLeg", "Foot", "Toes")),
    "leftEye", "rightEye", "jaw",
)
UNITY_BONES: dict[str, str] = {n: _unity_name(n) for n in _CANONICAL}
"""VRM 1.0 humanBone name (our joint names) -> Unity ``HumanBodyBones`` name."""
VRM_FROM_UNITY: dict[str, str] = {v: k for k, v in UNITY_BONES.items()}
"""Unity ``HumanBodyBones`` name -> VRM 1.0 humanBone name."""

_POS_SIGN = np.array([-1.0, 1.0, 1.0])
_QUAT_SIGN = np.array([1.0, 1.0, -1.0, -1.0])


def yup_to_unity_position(p: np.ndarray) -> np.ndarray:
    """Our positions ``(..., 3)`` m -> Unity's (left-handed, +Y up, facing +Z): ``(-x, y, z)``."""
    return np.asarray(p, dtype=float) * _POS_SIGN


def yup_to_unity_quaternion(q: np.ndarray) -> np.ndarray:
    """Our rotations ``(..., 4)`` wxyz -> the same rotation in Unity's axes, wxyz: ``(w, x, -y, -z)``."""
    return np.asarray(q, dtype=float) * _QUAT_SIGN


unity_to_yup_position = yup_to_unity_position
unity_to_yup_quaternion = yup_to_unity_quaternion


@dataclass
class VmcPose:
    """One decoded VMC frame, in Unity's axes as sent: ``bones`` Unity name -> (p ``(3,)``,
    q ``(4,)`` **wxyz**), ``root`` likewise or None, ``blend`` ARKit name -> value,
    ``applied`` whether ``/VMC/Ext/Blend/Apply`` came, ``time`` (``/VMC/Ext/T``), ``ok``
    the ``/VMC/Ext/OK`` arguments, ``other`` addresses we do not interpret."""

    bones: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    root: tuple[np.ndarray, np.ndarray] | None = None
    blend: dict[str, float] = field(default_factory=dict)
    applied: bool = False
    time: float | None = None
    ok: list | None = None
    other: list[str] = field(default_factory=list)


def _pq(args: list, address: str) -> tuple[str, np.ndarray, np.ndarray]:
    if len(args) < 8 or not isinstance(args[0], str):
        raise UsageError(f"{address} needs (name, px, py, pz, qx, qy, qz, qw), got {args!r}")
    p = np.array(args[1:4], dtype=float)
    x, y, z, w = (float(v) for v in args[4:8])
    return args[0], p, np.array([w, x, y, z])


def read_pose(messages: Iterable[osc.Message], into: VmcPose | None = None) -> VmcPose:
    """Collect VMC messages (decoded, bundles flattened) into a :class:`VmcPose`."""
    pose = into if into is not None else VmcPose()
    for m in messages:
        a = m.address
        if a == "/VMC/Ext/Bone/Pos":
            name, p, q = _pq(m.args, a)
            pose.bones[name] = (p, q)
        elif a == "/VMC/Ext/Root/Pos":
            _, p, q = _pq(m.args, a)
            pose.root = (p, q)
        elif a == "/VMC/Ext/Blend/Val":
            if len(m.args) >= 2 and isinstance(m.args[0], str):
                pose.blend[m.args[0]] = float(m.args[1])
        elif a == "/VMC/Ext/Blend/Apply":
            pose.applied = True
        elif a == "/VMC/Ext/T":
            pose.time = float(m.args[0]) if m.args else None
        elif a == "/VMC/Ext/OK":
            pose.ok = list(m.args)
        else:
            pose.other.append(a)
    return pose


def pose_packets(joint_names: Iterable[str], rotations: np.ndarray, root_position: np.ndarray, *,
                 offsets: np.ndarray | None = None, blendshapes: Mapping[str, float] | None = None,
                 t: float | None = None, tracked: bool = True, timetag: int = osc.IMMEDIATELY,
                 max_bytes: int = 8192) -> list[bytes]:
    """One frame as VMC datagrams (OSC bundles of at most ``max_bytes`` each).

    ``joint_names`` ``(J,)`` VRM humanBone names (joints of other names are skipped);
    ``rotations`` ``(J, 4)`` wxyz local, our axes (identity = T-pose rest);
    ``root_position`` ``(3,)`` m, the hips in our world frame; ``offsets`` ``(J, 3)``
    rest offsets from the parent (sent as the bones' local positions; zeros when None);
    ``blendshapes`` ARKit name -> 0..1; ``/VMC/Ext/Blend/Apply`` ends every frame; ``t`` the
    sender's time in s (default ``time.monotonic()``); ``tracked`` goes into
    ``/VMC/Ext/OK``'s tracking status.
    """
    names = list(joint_names)
    rot = np.asarray(rotations, dtype=float)
    if rot.shape != (len(names), 4):
        raise UsageError(f"rotations must be ({len(names)}, 4) wxyz, got {rot.shape}")
    off = np.zeros((len(names), 3)) if offsets is None else np.asarray(offsets, dtype=float)
    q_u = yup_to_unity_quaternion(rot)
    p_u = yup_to_unity_position(off)
    hips_u = yup_to_unity_position(np.asarray(root_position, dtype=float).reshape(3))
    head = [osc.Message("/VMC/Ext/OK", [1, 3, 0, 1 if tracked else 0]),
            osc.Message("/VMC/Ext/T", [float(time.monotonic() if t is None else t)]),
            osc.Message("/VMC/Ext/Root/Pos", ["root", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0])]
    bones = []
    for j, n in enumerate(names):
        u = UNITY_BONES.get(n)
        if u is None:
            continue
        p = hips_u if u == "Hips" else p_u[j]
        w, x, y, z = (float(v) for v in q_u[j])
        bones.append(osc.Message("/VMC/Ext/Bone/Pos", [u, float(p[0]), float(p[1]), float(p[2]), x, y, z, w]))
    msgs = head + bones
    if blendshapes:
        msgs += [osc.Message("/VMC/Ext/Blend/Val", [str(k), float(v)]) for k, v in blendshapes.items()]
    # Apply closes every frame, also without values: VMC has no other end-of-frame
    # message, and a Marionette can show the frame at once instead of at the next OK
    msgs.append(osc.Message("/VMC/Ext/Blend/Apply", []))
    packets: list[bytes] = []
    cur: list[bytes] = []
    size = 16
    for m in msgs:
        b = osc.encode_message(m)
        if cur and size + 4 + len(b) > max_bytes:
            packets.append(_bundle_bytes(cur, timetag))
            cur, size = [], 16
        cur.append(b)
        size += 4 + len(b)
    if cur:
        packets.append(_bundle_bytes(cur, timetag))
    return packets


def _bundle_bytes(encoded: list[bytes], timetag: int) -> bytes:
    import struct

    return b"#bundle\x00" + struct.pack(">Q", timetag) + b"".join(struct.pack(">i", len(b)) + b for b in encoded)


def parse_hostport(spec: str | None) -> tuple[str, int]:
    """``"HOST:PORT"``, ``"HOST"``, ``":PORT"`` or None -> ``(host, port)``, defaults
    :data:`DEFAULT_HOST` / :data:`DEFAULT_PORT`. ``[::1]:39539`` for IPv6."""
    if spec is None or spec == "":
        return DEFAULT_HOST, DEFAULT_PORT
    s = spec.strip()
    if s.startswith("["):
        host, _, rest = s[1:].partition("]")
        port_s = rest[1:] if rest.startswith(":") else ""
    elif s.count(":") == 1:
        host, port_s = s.split(":")
    else:
        host, port_s = s, ""
    host = host or DEFAULT_HOST
    try:
        port = int(port_s) if port_s else DEFAULT_PORT
    except ValueError:
        raise UsageError(f"--vmc {spec!r}: the port must be a number (HOST:PORT, e.g. 127.0.0.1:39539)") from None
    if not 0 < port < 65536:
        raise UsageError(f"--vmc {spec!r}: port {port} is outside 1..65535")
    return host, port


class VmcSender:
    """Sends VMC frames over UDP to ``(host, port)``.

    Nothing listens: the socket only sends. When the target is a loopback address the
    socket is bound to the loopback interface too (``127.0.0.1:0``), so it never
    appears on another interface; any other target is only used when asked for.
    ``send_pose`` returns the number of datagrams sent; errors from the network (a
    Marionette not running is *not* one: UDP does not notice) are counted in
    ``errors`` and the last one kept in ``last_error``, never raised mid-take.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
        except socket.gaierror as e:
            raise UsageError(f"VMC target {host}:{port}: cannot resolve the host ({e})") from None
        family, _, _, _, addr = infos[0]
        self.address = addr
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            loop = ipaddress.ip_address(addr[0]).is_loopback
        except ValueError:
            loop = False
        if loop:
            self.sock.bind(("::1", 0) if family == socket.AF_INET6 else ("127.0.0.1", 0))
        self.sent = 0
        self.errors = 0
        self.last_error: str | None = None

    def send_packets(self, packets: list[bytes]) -> int:
        n = 0
        for b in packets:
            try:
                self.sock.sendto(b, self.address)
                n += 1
            except OSError as e:
                self.errors += 1
                self.last_error = f"{type(e).__name__}: {e}"
        self.sent += n
        return n

    def send_pose(self, joint_names, rotations, root_position, **kw) -> int:
        return self.send_packets(pose_packets(joint_names, rotations, root_position, **kw))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> VmcSender:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
