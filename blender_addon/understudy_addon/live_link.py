"""Live link: receive VMC (OSC over UDP) and pose the selected armature in real time,
optionally recording what arrives into an action.

``understudy record --vmc`` (or VSeeFace, Warudo, any VMC *Performer*) sends bone
rotations; the modal operator :class:`UNDERSTUDY_OT_live_link` listens on
``127.0.0.1:39539`` by default (a non-blocking UDP socket polled on a timer, bound to
that one address only), applies the newest pose to the active armature at each tick, and
with *Record* on keeps every received frame and writes them as one action with bulk keys
when it stops (Esc, right click, or :class:`UNDERSTUDY_OT_live_link_stop`). Blendshape
values (``/VMC/Ext/Blend/Val``) set the shape keys of the same name on the armature's
meshes (shown live, not recorded).

How a VMC rotation becomes a pose-bone rotation
-----------------------------------------------
VMC bones carry Unity ``HumanBodyBones`` names and *local* rotations in Unity's frame
(left-handed, +Y up, avatar facing +Z) relative to a T-pose whose rest orientations are
all the identity. Converted once to Blender's armature axes (Z up, facing -Y: mirror X
into our right-handed +Y-up frame, ``(w, x, -y, -z)``, then ``(x, y, z) -> (x, -z, y)``),
the local rotations are chained down the VMC hierarchy into world-space deltas ``D``
(rest -> posed). A pose bone with rest orientation ``B`` (``bone.matrix_local``) whose
nearest mapped ancestor in *the rig* has delta ``D_p`` gets the basis rotation
``B^-1 D_p^-1 D B``, so bones the rig lacks (an ``upperChest``) or extra bones the rig has
(twist bones) do not break the chain. A rig whose limbs do not rest in the T-pose (an
A-pose) is aligned first: each arm and leg bone's rest direction is compared with its T-pose
direction, and the swing ``C`` between them is taken out (``D -> D C^-1``), so the VMC rest
pose puts the rig in a T-pose and every other pose follows (twist about the bone is not
compared).

The bone map (Unity name -> the armature's bone) is found by name: a bone named like the
Unity or VRM humanBone name (case, ``_ . -`` and spaces ignored), or, when the add-on's
shipped bone-map profiles are present (``core.bonemaps``), the detected profile. Only
numpy and the standard library are used (no scipy); the small OSC reader below is the
same wire format as ``mocap.osc`` (tests check they agree).
"""


import socket
import struct
import time

import numpy as np

try:  # bpy only inside Blender (or the bpy module); the pure functions work without it
    import bpy
    from bpy.props import BoolProperty, IntProperty, StringProperty
except ImportError:  # pragma: no cover - imported outside Blender for the pure helpers
    bpy = None

__all__ = [
    "UNITY_PARENT",
    "VRM_FROM_UNITY",
    "decode_osc",
    "VmcFrames",
    "VmcReceiver",
    "unity_to_blender_quaternion",
    "unity_to_blender_position",
    "world_deltas",
    "auto_bone_map",
    "rest_alignment",
    "apply_vmc_pose",
    "apply_vmc_blend",
    "LiveRecording",
    "LiveSession",
    "register",
    "unregister",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 39539

# -- the VMC humanoid: Unity names, VRM names, parents ----------------------------------

_FINGERS = ("Index", "Middle", "Ring", "Little")


def _humanoid() -> tuple[dict[str, str | None], dict[str, str]]:
    parent: dict[str, str | None] = {"Hips": None, "Spine": "Hips", "Chest": "Spine", "UpperChest": "Chest",
                                     "Neck": "UpperChest", "Head": "Neck"}
    vrm = {"Hips": "hips", "Spine": "spine", "Chest": "chest", "UpperChest": "upperChest", "Neck": "neck",
           "Head": "head"}
    for S in ("Left", "Right"):
        s = S.lower()
        chain = [("Shoulder", "UpperChest"), ("UpperArm", "Shoulder"), ("LowerArm", "UpperArm"),
                 ("Hand", "LowerArm"), ("UpperLeg", None), ("LowerLeg", "UpperLeg"), ("Foot", "LowerLeg"),
                 ("Toes", "Foot")]
        for b, p in chain:
            parent[S + b] = ("Hips" if b == "UpperLeg" else (p if p == "UpperChest" else S + p))
            vrm[S + b] = s + b
        # thumbs: Unity Proximal/Intermediate/Distal = VRM 1.0 Metacarpal/Proximal/Distal
        for u, v, p in (("Proximal", "Metacarpal", None), ("Intermediate", "Proximal", "Proximal"),
                        ("Distal", "Distal", "Intermediate")):
            parent[f"{S}Thumb{u}"] = S + "Hand" if p is None else f"{S}Thumb{p}"
            vrm[f"{S}Thumb{u}"] = f"{s}Thumb{v}"
        for f in _FINGERS:
            for u, p in (("Proximal", None), ("Intermediate", "Proximal"), ("Distal", "Intermediate")):
                parent[f"{S}{f}{u}"] = S + "Hand" if p is None else f"{S}{f}{p}"
                vrm[f"{S}{f}{u}"] = f"{s}{f}{u}"
    return parent, vrm


UNITY_PARENT, VRM_FROM_UNITY = _humanoid()
"""Unity HumanBodyBones name -> its parent (the 52 bones VMC senders use), and -> VRM 1.0 name."""
_ORDER = list(UNITY_PARENT)  # parents come first by construction

# -- OSC (the subset VMC uses) ----------------------------------------------------------


def _osc_string(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("utf-8"), end + 1 + (-(end + 1 - pos) % 4)


def decode_osc(data: bytes, out: list | None = None) -> list[tuple[str, list]]:
    """OSC bytes -> ``[(address, args), ...]`` with bundles flattened. Types i f d h s T F N;
    raises ValueError on a malformed packet."""
    out = [] if out is None else out
    if len(data) % 4:
        raise ValueError(f"OSC packet of {len(data)} bytes (not a multiple of 4)")
    if data.startswith(b"#bundle\x00"):
        pos = 16
        while pos < len(data):
            n = struct.unpack_from(">i", data, pos)[0]
            if n <= 0 or pos + 4 + n > len(data):
                raise ValueError(f"OSC bundle element of {n} bytes at {pos}")
            decode_osc(data[pos + 4:pos + 4 + n], out)
            pos += 4 + n
        return out
    addr, pos = _osc_string(data, 0)
    if not addr.startswith("/"):
        raise ValueError(f"OSC address {addr!r}")
    args: list = []
    if pos < len(data):
        tags, pos = _osc_string(data, pos)
        for t in tags[1:]:
            if t == "i":
                args.append(struct.unpack_from(">i", data, pos)[0])
                pos += 4
            elif t == "f":
                args.append(struct.unpack_from(">f", data, pos)[0])
                pos += 4
            elif t == "d":
                args.append(struct.unpack_from(">d", data, pos)[0])
                pos += 8
            elif t == "h":
                args.append(struct.unpack_from(">q", data, pos)[0])
                pos += 8
            elif t == "s":
                s, pos = _osc_string(data, pos)
                args.append(s)
            elif t in "TFN":
                args.append({"T": True, "F": False, "N": None}[t])
            else:
                raise ValueError(f"OSC type tag {t!r} not supported here")
    out.append((addr, args))
    return out


class VmcFrames:
    """Folds decoded VMC messages into frames, each a dict ``{"bones": {unity: (p (3,),
    q (4,) wxyz)}, "root": (p, q) | None, "blend": {name: v}, "time": float | None}`` in
    Unity's axes. A frame ends at ``/VMC/Ext/OK`` (which starts each of our frames) once
    bones arrived, or at ``/VMC/Ext/Blend/Apply``."""

    def __init__(self) -> None:
        self._cur = self._new()

    @staticmethod
    def _new() -> dict:
        return {"bones": {}, "root": None, "blend": {}, "time": None}

    def feed(self, messages: list[tuple[str, list]]) -> list[dict]:
        done = []
        for addr, a in messages:
            if addr == "/VMC/Ext/OK" and self._cur["bones"]:
                done.append(self._cur)
                self._cur = self._new()
            elif addr in ("/VMC/Ext/Bone/Pos", "/VMC/Ext/Root/Pos") and len(a) >= 8:
                p = np.array(a[1:4], dtype=float)
                q = np.array([a[7], a[4], a[5], a[6]], dtype=float)
                if addr == "/VMC/Ext/Root/Pos":
                    self._cur["root"] = (p, q)
                else:
                    self._cur["bones"][str(a[0])] = (p, q)
            elif addr == "/VMC/Ext/Blend/Val" and len(a) >= 2:
                self._cur["blend"][str(a[0])] = float(a[1])
            elif addr == "/VMC/Ext/Blend/Apply":
                if self._cur["bones"] or self._cur["blend"]:
                    done.append(self._cur)
                    self._cur = self._new()
            elif addr == "/VMC/Ext/T" and a:
                self._cur["time"] = float(a[0])
        return done

    def flush(self) -> list[dict]:
        """The frame being collected, as finished (for a sender that sends no ``OK``)."""
        if self._cur["bones"]:
            f, self._cur = self._cur, self._new()
            return [f]
        return []


class VmcReceiver:
    """A non-blocking UDP socket bound to ``(host, port)`` (127.0.0.1 by default: nothing
    on other interfaces). :meth:`poll` reads every datagram waiting and returns the
    frames completed since the last call (see :class:`VmcFrames`); ``bad`` counts
    packets that were not valid OSC."""

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((host, port))
        self.address = self.sock.getsockname()
        self.bad = 0
        self.packets = 0
        self.frames = VmcFrames()

    def flush(self) -> list[dict]:
        return self.frames.flush()

    def poll(self, max_packets: int = 2000) -> list[dict]:
        frames = []
        for _ in range(max_packets):
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                break
            self.packets += 1
            try:
                msgs = decode_osc(data)
            except (ValueError, struct.error, UnicodeDecodeError, IndexError):
                self.bad += 1
                continue
            frames += self.frames.feed(msgs)
        return frames

    def close(self) -> None:
        self.sock.close()


# -- axes and pose maths (numpy, wxyz) -------------------------------------------------


def _qmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array([aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw])


def _qinv(q: np.ndarray) -> np.ndarray:
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def _q2m(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def _m2q(m: np.ndarray) -> np.ndarray:
    t = np.trace(m)
    if t > 0:
        s = 2.0 * np.sqrt(t + 1.0)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    return q / np.linalg.norm(q)


def unity_to_blender_quaternion(q: np.ndarray) -> np.ndarray:
    """A rotation ``(4,)`` wxyz in Unity's axes -> Blender's (Z up, facing -Y): mirror X
    into our +Y-up frame ``(w, x, -y, -z)``, then ``(x, y, z) -> (x, -z, y)``."""
    w, x, y, z = np.asarray(q, dtype=float)
    x, y, z = x, -y, -z          # Unity -> ours (the X mirror)
    return np.array([w, x, -z, y])  # ours -> Blender


def unity_to_blender_position(p: np.ndarray) -> np.ndarray:
    """A position ``(3,)`` in Unity's axes (m) -> Blender's: ``(-x, y, z)`` then ``(x, -z, y)``."""
    x, y, z = np.asarray(p, dtype=float)
    return np.array([-x, -z, y])


def world_deltas(bones: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    """Unity local rotations -> each bone's world-space delta from the T-pose rest, as
    wxyz in Blender's axes, for every humanoid bone (bones not sent hold the rest)."""
    D: dict[str, np.ndarray] = {}
    for name in _ORDER:
        par = UNITY_PARENT[name]
        q = bones.get(name)
        local = unity_to_blender_quaternion(q[1]) if q is not None else np.array([1.0, 0, 0, 0])
        D[name] = local if par is None else _qmul(D[par], local)
    return D


def _norm_name(s: str) -> str:
    return "".join(ch for ch in s.casefold() if ch.isalnum())


def auto_bone_map(bone_names) -> dict[str, str]:
    """Unity name -> the armature's bone, by name: a bone called like the Unity or VRM
    humanBone name (``LeftUpperArm``, ``leftUpperArm``, ``left_upper_arm``, ``J_Bip``-free
    names), else, when the add-on's bone-map profiles are shipped beside it, the detected
    profile. Raises ``LookupError`` naming the missing core bones."""
    names = list(bone_names)
    by_norm = {}
    for n in names:
        by_norm.setdefault(_norm_name(n), n)
    m: dict[str, str] = {}
    for u, v in VRM_FROM_UNITY.items():
        hit = by_norm.get(_norm_name(u)) or by_norm.get(_norm_name(v))
        if hit:
            m[u] = hit
    core = ("Hips", "LeftUpperArm", "RightUpperArm", "LeftUpperLeg", "RightUpperLeg", "Head")
    if all(c in m for c in core):
        return m
    profile_map = _profile_map(names)
    if profile_map is not None and all(c in profile_map for c in core):
        return profile_map
    missing = [c for c in core if c not in m]
    raise LookupError(f"cannot map the humanoid bones {missing} onto this armature by name; "
                      "rename them (VRM or Unity names) or give a bone map")


def _profile_map(names) -> dict[str, str] | None:
    """The add-on's profile detection (``core.bonemaps``), when its data ships here."""
    try:
        from .core import bonemaps
    except ImportError:
        return None
    if not bonemaps.BONEMAP_DIR.is_dir():
        return None
    bm, _ = bonemaps.detect_profile(names)
    found = bm.resolve(names)
    vrm_to_unity = {v: u for u, v in VRM_FROM_UNITY.items()}
    return {vrm_to_unity[c]: b for c, b in found.items() if c in vrm_to_unity}


def _rig_parent_map(arm_data, bone_map: dict[str, str]) -> dict[str, str | None]:
    """For each mapped Unity bone, the Unity name of the nearest mapped ancestor in the rig."""
    rig_to_unity = {b: u for u, b in bone_map.items()}
    out: dict[str, str | None] = {}
    for u, b in bone_map.items():
        bone = arm_data.bones.get(b)
        p = bone.parent if bone is not None else None
        while p is not None and p.name not in rig_to_unity:
            p = p.parent
        out[u] = rig_to_unity[p.name] if p is not None else None
    return out


_TPOSE_DIR: dict[str, tuple[float, float, float]] = {
    **{f"{S}{b}": (x, 0.0, 0.0) for S, x in (("Left", 1.0), ("Right", -1.0))
       for b in ("Shoulder", "UpperArm", "LowerArm", "Hand")},
    **{f"{S}{b}": (0.0, 0.0, -1.0) for S in ("Left", "Right") for b in ("UpperLeg", "LowerLeg")},
}
"""Direction (head to tail, Blender axes) of the limb bones in VMC's T-pose rest: arms out
along +-X (the character's left is +X in Blender), legs straight down."""


def _swing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The shortest rotation (wxyz) taking unit ``a`` onto unit ``b``."""
    c = float(a @ b)
    if c < -0.999999:  # opposite: any perpendicular axis
        ax = np.cross(a, [1.0, 0, 0] if abs(a[0]) < 0.9 else [0, 1.0, 0])
        return np.array([0.0, *(ax / np.linalg.norm(ax))])
    q = np.array([1.0 + c, *np.cross(a, b)])
    return q / np.linalg.norm(q)


def rest_alignment(arm_data, bone_map: dict[str, str], *, min_deg: float = 1.0) -> dict[str, np.ndarray]:
    """Per mapped limb bone, the rotation ``C`` (wxyz, armature axes) from its T-pose
    direction to the rig's rest direction: identity for a T-pose rig; for an A-pose rig
    the arms' ~45 deg. Bones off :data:`_TPOSE_DIR` (trunk, fingers, feet) get none."""
    out = {}
    for u, b in bone_map.items():
        d_t = _TPOSE_DIR.get(u)
        bone = arm_data.bones.get(b)
        if d_t is None or bone is None:
            continue
        d = np.array(bone.tail_local, dtype=float) - np.array(bone.head_local, dtype=float)
        if np.linalg.norm(d) < 1e-9:
            continue
        d /= np.linalg.norm(d)
        if np.degrees(np.arccos(np.clip(d @ np.array(d_t), -1.0, 1.0))) >= min_deg:
            out[u] = _swing(np.array(d_t), d)
    return out


def apply_vmc_pose(arm_obj, frame: dict, bone_map: dict[str, str], *, root_motion: bool = True,
                   alignment: dict[str, np.ndarray] | None = None) -> int:
    """Pose ``arm_obj`` with one received VMC ``frame`` (see :meth:`VmcReceiver.poll`).
    ``alignment`` (default :func:`rest_alignment`) turns limbs whose rest is not the
    T-pose (an A-pose rig's arms): a VMC rest pose then puts them in the T-pose.
    Returns the number of bones set."""
    D = world_deltas(frame["bones"])
    C = rest_alignment(arm_obj.data, bone_map) if alignment is None else alignment
    for u, c in C.items():  # the rig's rest is the T-pose turned by C: posed = D C^-1 (rig rest)
        D[u] = _qmul(D[u], _qinv(c))
    rig_parent = _rig_parent_map(arm_obj.data, bone_map)
    n = 0
    for u, bname in bone_map.items():
        pb = arm_obj.pose.bones.get(bname)
        if pb is None or u not in frame["bones"] and u != "Hips":
            continue
        B = np.array(pb.bone.matrix_local, dtype=float)[:3, :3]
        Bq = _m2q(B)
        Dp = D[rig_parent[u]] if rig_parent[u] is not None else np.array([1.0, 0, 0, 0])
        basis = _qmul(_qinv(Bq), _qmul(_qmul(_qinv(Dp), D[u]), Bq))
        pb.rotation_mode = "QUATERNION"
        pb.rotation_quaternion = [float(v) for v in basis]
        n += 1
        if u == "Hips" and root_motion and "Hips" in frame["bones"]:
            p = unity_to_blender_position(frame["bones"]["Hips"][0])
            head = np.array(pb.bone.head_local, dtype=float)
            pb.location = [float(v) for v in B.T @ (p - head)]
    return n


def apply_vmc_blend(arm_obj, frame: dict) -> int:
    """Set the shape keys named like the frame's blendshapes (``jawOpen``, ``A``...,
    exact names) on the meshes parented to ``arm_obj`` (or deformed by it). Returns the
    number of keys set."""
    blend = frame.get("blend") or {}
    if not blend:
        return 0
    n = 0
    for ob in bpy.data.objects:
        if ob.type != "MESH" or ob.data.shape_keys is None:
            continue
        if ob.parent != arm_obj and not any(m.type == "ARMATURE" and m.object == arm_obj for m in ob.modifiers):
            continue
        kb = ob.data.shape_keys.key_blocks
        for name, v in blend.items():
            k = kb.get(name)
            if k is not None:
                k.value = float(min(max(v, k.slider_min), k.slider_max))
                n += 1
    return n


class LiveRecording:
    """Received frames kept for an action: per bone the basis rotations, the hips'
    location, at scene frames from the sender's ``/VMC/Ext/T`` (or the arrival time)."""

    def __init__(self, fps: float) -> None:
        self.fps = float(fps)
        self.t0: float | None = None
        self.frames: list[float] = []
        self.rot: dict[str, list] = {}
        self.loc: list = []

    def add(self, arm_obj, frame: dict, bone_map: dict[str, str]) -> None:
        t = frame.get("time")
        t = time.monotonic() if t is None else float(t)
        if self.t0 is None:
            self.t0 = t
        f = 1.0 + (t - self.t0) * self.fps
        if self.frames and f <= self.frames[-1]:
            return
        self.frames.append(f)
        for bname in bone_map.values():
            pb = arm_obj.pose.bones.get(bname)
            if pb is not None:
                self.rot.setdefault(bname, []).append(tuple(pb.rotation_quaternion))
        hips = arm_obj.pose.bones.get(bone_map.get("Hips", ""))
        self.loc.append(tuple(hips.location) if hips is not None else (0.0, 0.0, 0.0))

    def to_action(self, arm_obj, name: str, bone_map: dict[str, str]):
        """Write everything as one action on ``arm_obj`` with bulk keys; returns it."""
        act = bpy.data.actions.new(name)
        slotted = hasattr(act, "layers") and hasattr(act, "slots")
        if slotted:
            slot = act.slots.new(id_type="OBJECT", name=arm_obj.name)
            bag = act.layers.new("Layer").strips.new(type="KEYFRAME").channelbag(slot, ensure=True)
            fcurves = bag.fcurves
        else:  # Blender 4.2/4.3
            fcurves = act.fcurves
        frames = np.asarray(self.frames, dtype=np.float32)
        co = np.empty((len(frames), 2), dtype=np.float32)
        co[:, 0] = frames

        def put(path, values):
            values = np.asarray(values, dtype=np.float32)
            for i in range(values.shape[1]):
                fc = fcurves.new(path, index=i)
                fc.keyframe_points.add(len(frames))
                co[:, 1] = values[:, i]
                fc.keyframe_points.foreach_set("co", co.ravel())
                fc.update()

        for bname, qs in self.rot.items():
            put(f'pose.bones["{bname}"].rotation_quaternion', qs)
        hips = bone_map.get("Hips")
        if hips:
            put(f'pose.bones["{hips}"].location', self.loc)
        ad = arm_obj.animation_data or arm_obj.animation_data_create()
        ad.action = act
        if slotted:
            ad.action_slot = slot
        return act


# -- the session and the operators --------------------------------------------------


class LiveSession:
    """What the modal operator does, without Blender's event plumbing (so it can be
    driven headless): listen, and at each :meth:`tick` pose ``arm_obj`` with the newest
    frame (every frame when recording); :meth:`finish` closes the socket and writes the
    recording as an action. Raises ``LookupError`` (no bone map) or ``OSError`` (the
    port cannot be bound)."""

    def __init__(self, arm_obj, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, record: bool = False,
                 fps: float = 30.0, root_motion: bool = True) -> None:
        self.arm_name = arm_obj.name
        self.bone_map = auto_bone_map([b.name for b in arm_obj.data.bones])
        self.alignment = rest_alignment(arm_obj.data, self.bone_map)
        self.root_motion = root_motion
        self.rx = VmcReceiver(host, port)
        self.recording = LiveRecording(fps) if record else None
        self.frames = 0

    def tick(self) -> int:
        """Apply what arrived since the last tick; returns the number of frames received.
        Raises ``LookupError`` when the armature is gone."""
        arm = bpy.data.objects.get(self.arm_name)
        if arm is None:
            raise LookupError(f"the armature {self.arm_name!r} was deleted")
        frames = self.rx.poll()
        for fr in frames if self.recording is not None else frames[-1:]:
            apply_vmc_pose(arm, fr, self.bone_map, root_motion=self.root_motion, alignment=self.alignment)
            apply_vmc_blend(arm, fr)
            if self.recording is not None:
                self.recording.add(arm, fr, self.bone_map)
        self.frames += len(frames)
        return len(frames)

    def finish(self, action_name: str = "LiveLink") -> str:
        """Stop listening, write the recording (if any); returns a one-line summary."""
        self.rx.close()
        msg = f"live link stopped after {self.frames} frames"
        if self.rx.bad:
            msg += f" ({self.rx.bad} packets were not valid OSC)"
        arm = bpy.data.objects.get(self.arm_name)
        if self.recording is not None and self.recording.frames and arm is not None:
            act = self.recording.to_action(arm, action_name, self.bone_map)
            msg += f"; recorded {len(self.recording.frames)} frames into action {act.name!r}"
        return msg


if bpy is not None:

    class UNDERSTUDY_OT_live_link(bpy.types.Operator):  # noqa: N801 - Blender naming
        """Receive VMC on a UDP port and pose the active armature live (Esc to stop)"""

        bl_idname = "understudy.live_link"
        bl_label = "Understudy Live Link (VMC)"
        bl_options = {"REGISTER"}

        host: StringProperty(name="Address", default=DEFAULT_HOST,
                             description="Listen on this address only (127.0.0.1: this computer)")
        port: IntProperty(name="Port", default=DEFAULT_PORT, min=1, max=65535)
        record: BoolProperty(name="Record", default=False,
                             description="Keep every received frame and write an action when stopping")
        root_motion: BoolProperty(name="Root motion", default=True, description="Move the hips as sent")

        _stop_requested = False

        def invoke(self, context, event):
            return self.execute(context)

        def execute(self, context):
            arm = context.active_object
            if arm is None or arm.type != "ARMATURE":
                self.report({"ERROR"}, "select an armature first")
                return {"CANCELLED"}
            try:
                fps = context.scene.render.fps / context.scene.render.fps_base
                self._session = LiveSession(arm, host=self.host, port=self.port, record=self.record, fps=fps,
                                            root_motion=self.root_motion)
            except LookupError as e:
                self.report({"ERROR"}, str(e))
                return {"CANCELLED"}
            except OSError as e:
                self.report({"ERROR"}, f"cannot listen on {self.host}:{self.port}: {e}")
                return {"CANCELLED"}
            type(self)._stop_requested = False
            self._timer = context.window_manager.event_timer_add(1.0 / 60.0, window=context.window)
            context.window_manager.modal_handler_add(self)
            self.report({"INFO"}, f"live link: listening on {self.host}:{self.port}, "
                                  f"{len(self._session.bone_map)} bones mapped")
            return {"RUNNING_MODAL"}

        def modal(self, context, event):
            if event.type in {"ESC", "RIGHTMOUSE"} or type(self)._stop_requested:
                return self._finish(context)
            if event.type != "TIMER":
                return {"PASS_THROUGH"}
            try:
                n = self._session.tick()
            except LookupError as e:
                self.report({"ERROR"}, f"{e}; live link stopped")
                return self._finish(context)
            if n and context.area is not None:
                context.area.tag_redraw()
            return {"PASS_THROUGH"}

        def _finish(self, context):
            context.window_manager.event_timer_remove(self._timer)
            self.report({"INFO"}, self._session.finish())
            return {"FINISHED"}

    class UNDERSTUDY_OT_live_link_stop(bpy.types.Operator):  # noqa: N801
        """Stop the running live link (and write its recording)"""

        bl_idname = "understudy.live_link_stop"
        bl_label = "Stop Live Link"

        def execute(self, context):
            UNDERSTUDY_OT_live_link._stop_requested = True
            return {"FINISHED"}

    _CLASSES = (UNDERSTUDY_OT_live_link, UNDERSTUDY_OT_live_link_stop)
else:  # pragma: no cover
    _CLASSES = ()


def register():
    for c in _CLASSES:
        bpy.utils.register_class(c)


def unregister():
    for c in reversed(_CLASSES):
        bpy.utils.unregister_class(c)
