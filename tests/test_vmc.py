"""VMC streaming: bone names, the one axis conversion, packets on a loopback UDP socket."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from mocap import osc, vmc
from mocap.errors import UsageError
from mocap.glossary import A2Q, Q_apply
from mocap.skeleton import canonical_skeleton


def _recv_all(sock, timeout=1.0):
    sock.settimeout(timeout)
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
            sock.settimeout(0.2)
    except TimeoutError:
        pass
    return out


def test_unity_bone_names_cover_the_canonical_skeleton():
    sk = canonical_skeleton()
    names = [vmc.UNITY_BONES[n] for n in sk.names]
    assert len(set(names)) == sk.n_joints == 52
    assert vmc.UNITY_BONES["hips"] == "Hips"
    assert vmc.UNITY_BONES["upperChest"] == "UpperChest"
    assert vmc.UNITY_BONES["leftUpperArm"] == "LeftUpperArm"
    assert vmc.UNITY_BONES["rightLittleDistal"] == "RightLittleDistal"
    # VRM 1.0 thumbs are one step "earlier" than Unity's names
    assert vmc.UNITY_BONES["leftThumbMetacarpal"] == "LeftThumbProximal"
    assert vmc.UNITY_BONES["leftThumbProximal"] == "LeftThumbIntermediate"
    assert vmc.UNITY_BONES["rightThumbDistal"] == "RightThumbDistal"
    assert vmc.VRM_FROM_UNITY["LeftThumbIntermediate"] == "leftThumbProximal"


def test_axis_conversion_keeps_directions_in_the_mirrored_frame():
    rng = np.random.default_rng(3)
    q = A2Q(rng.normal(size=(20, 3)))
    v = rng.normal(size=(20, 3))
    # rotating then converting equals converting then rotating in Unity's frame
    a = vmc.yup_to_unity_position(Q_apply(q, v))
    b = Q_apply(vmc.yup_to_unity_quaternion(q), vmc.yup_to_unity_position(v))
    assert np.allclose(a, b, atol=1e-12)
    assert np.allclose(vmc.unity_to_yup_quaternion(vmc.yup_to_unity_quaternion(q)), q)


def _synthetic_pose():
    """Canonical skeleton, all rest except the left upper arm swung down 90 deg (an A/I pose
    arm) and the right forearm bent 90 deg forward; hips at (0.1, 0.9, 0.2) m."""
    sk = canonical_skeleton()
    rot = np.tile([1.0, 0.0, 0.0, 0.0], (sk.n_joints, 1))
    rot[sk.index("leftUpperArm")] = A2Q(np.array([0.0, 0.0, -np.pi / 2]))   # +X -> -Y
    rot[sk.index("rightLowerArm")] = A2Q(np.array([0.0, np.pi / 2, 0.0]))   # -X -> +Z (forward)
    return sk, rot, np.array([0.1, 0.9, 0.2])


def test_vmc_packets_over_loopback_decode_to_the_pose():
    sk, rot, hips = _synthetic_pose()
    # the left hand rests at +X for us: check the synthetic pose first
    assert np.allclose(Q_apply(rot[sk.index("leftUpperArm")], [1.0, 0, 0]), [0, -1, 0], atol=1e-9)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    port = rx.getsockname()[1]
    try:
        with vmc.VmcSender("127.0.0.1", port) as tx:
            assert tx.sock.getsockname()[0] == "127.0.0.1"  # the sender is bound to loopback only
            n = tx.send_pose(sk.names, rot, hips, offsets=sk.offsets, t=4.25,
                             blendshapes={"jawOpen": 0.6, "eyeBlinkLeft": 1.0})
        packets = _recv_all(rx)
    finally:
        rx.close()
    assert n == len(packets) >= 1
    msgs = [m for p in packets for m in osc.iter_messages(osc.decode(p))]
    addresses = {m.address for m in msgs}
    assert addresses == {"/VMC/Ext/OK", "/VMC/Ext/T", "/VMC/Ext/Root/Pos", "/VMC/Ext/Bone/Pos",
                         "/VMC/Ext/Blend/Val", "/VMC/Ext/Blend/Apply"}
    # Apply comes after every value
    order = [m.address for m in msgs]
    assert max(i for i, a in enumerate(order) if a == "/VMC/Ext/Blend/Val") < order.index("/VMC/Ext/Blend/Apply")
    pose = vmc.read_pose(msgs)
    assert pose.time == 4.25 and pose.ok == [1, 3, 0, 1]
    assert pose.blend == pytest.approx({"jawOpen": 0.6, "eyeBlinkLeft": 1.0}) and pose.applied
    assert len(pose.bones) == 52 and "LeftThumbIntermediate" in pose.bones and "leftUpperArm" not in pose.bones
    for name, (_, q) in pose.bones.items():
        assert abs(np.linalg.norm(q) - 1.0) < 1e-6, name
    # hips position mirrored in X, in metres
    assert np.allclose(pose.bones["Hips"][0], [-0.1, 0.9, 0.2], atol=1e-6)
    # in Unity the avatar's left arm rests along -X; the received rotation must point it down
    q_la = pose.bones["LeftUpperArm"][1]
    assert np.allclose(Q_apply(q_la, [-1.0, 0, 0]), [0, -1, 0], atol=1e-6)
    # the right forearm (rests along +X in Unity) bends forward, +Z in both frames
    q_rf = pose.bones["RightLowerArm"][1]
    d = Q_apply(q_rf, [1.0, 0, 0])
    assert np.degrees(np.arccos(np.clip(d @ [0, 0, 1.0], -1, 1))) < 1e-3
    # a rest bone stays identity, and local positions are our offsets mirrored
    assert np.allclose(pose.bones["Spine"][1], [1, 0, 0, 0], atol=1e-7)
    j = sk.index("leftUpperArm")
    assert np.allclose(pose.bones["LeftUpperArm"][0], sk.offsets[j] * [-1, 1, 1], atol=1e-6)


def test_packets_are_split_below_the_size_limit():
    sk, rot, hips = _synthetic_pose()
    pk = vmc.pose_packets(sk.names, rot, hips, max_bytes=1024)
    assert len(pk) > 3 and all(len(p) <= 1024 for p in pk)
    msgs = [m for p in pk for m in osc.iter_messages(osc.decode(p))]
    assert sum(m.address == "/VMC/Ext/Bone/Pos" for m in msgs) == 52


def test_hostport_parsing():
    assert vmc.parse_hostport(None) == ("127.0.0.1", 39539)
    assert vmc.parse_hostport("127.0.0.1:40000") == ("127.0.0.1", 40000)
    assert vmc.parse_hostport(":40001") == ("127.0.0.1", 40001)
    assert vmc.parse_hostport("[::1]:40002") == ("::1", 40002)
    with pytest.raises(UsageError, match="port"):
        vmc.parse_hostport("localhost:abc")
    with pytest.raises(UsageError, match="outside"):
        vmc.parse_hostport("localhost:70000")
