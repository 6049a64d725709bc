"""The Blender live link, headless (bpy module): VMC datagrams from `mocap.vmc` received on a
loopback socket, applied to a T-pose armature, checked as bone directions in Blender's
axes, and recorded into an action with bulk keys."""

from __future__ import annotations

import importlib.util
import socket
import sys
import time

import numpy as np
import pytest

from mocap import osc, vmc
from mocap.glossary import A2Q
from mocap.skeleton import canonical_skeleton
from tests.conftest import ROOT, shared_file

bpy = pytest.importorskip("bpy")


def _live_link():
    path = ROOT / "blender_addon" / "understudy_addon" / "live_link.py"
    spec = importlib.util.spec_from_file_location("understudy_live_link_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


ll = _live_link()

# a T-pose rig in Blender's axes (Z up, facing -Y, the character's left at +X), VRM names,
# no upperChest (the shoulders and neck hang from the chest), rolls left at 0
BONES = {
    "hips": (None, (0, 0, 0.95), (0, 0, 1.05)),
    "spine": ("hips", (0, 0, 1.05), (0, 0, 1.2)),
    "chest": ("spine", (0, 0, 1.2), (0, 0, 1.4)),
    "neck": ("chest", (0, 0, 1.4), (0, 0, 1.5)),
    "head": ("neck", (0, 0, 1.5), (0, 0, 1.7)),
    "leftShoulder": ("chest", (0.05, 0, 1.4), (0.18, 0, 1.4)),
    "leftUpperArm": ("leftShoulder", (0.18, 0, 1.4), (0.45, 0, 1.4)),
    "leftLowerArm": ("leftUpperArm", (0.45, 0, 1.4), (0.7, 0, 1.4)),
    "leftHand": ("leftLowerArm", (0.7, 0, 1.4), (0.8, 0, 1.4)),
    "rightShoulder": ("chest", (-0.05, 0, 1.4), (-0.18, 0, 1.4)),
    "rightUpperArm": ("rightShoulder", (-0.18, 0, 1.4), (-0.45, 0, 1.4)),
    "rightLowerArm": ("rightUpperArm", (-0.45, 0, 1.4), (-0.7, 0, 1.4)),
    "rightHand": ("rightLowerArm", (-0.7, 0, 1.4), (-0.8, 0, 1.4)),
    "leftUpperLeg": ("hips", (0.1, 0, 0.95), (0.1, 0, 0.5)),
    "leftLowerLeg": ("leftUpperLeg", (0.1, 0, 0.5), (0.1, 0, 0.08)),
    "leftFoot": ("leftLowerLeg", (0.1, 0, 0.08), (0.1, -0.12, 0.02)),
    "rightUpperLeg": ("hips", (-0.1, 0, 0.95), (-0.1, 0, 0.5)),
    "rightLowerLeg": ("rightUpperLeg", (-0.1, 0, 0.5), (-0.1, 0, 0.08)),
    "rightFoot": ("rightLowerLeg", (-0.1, 0, 0.08), (-0.1, -0.12, 0.02)),
}


@pytest.fixture
def armature():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    data = bpy.data.armatures.new("Rig")
    obj = bpy.data.objects.new("Rig", data)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for name, (parent, head, tail) in BONES.items():
        eb = data.edit_bones.new(name)
        eb.head, eb.tail = head, tail
        eb.roll = 0.0
        if parent:
            eb.parent = data.edit_bones[parent]
            eb.use_connect = False
    bpy.ops.object.mode_set(mode="OBJECT")
    yield obj


def _direction(obj, name):
    pb = obj.pose.bones[name]
    d = np.array(obj.matrix_world @ pb.tail) - np.array(obj.matrix_world @ pb.head)
    return d / np.linalg.norm(d)


def _angle_deg(a, b):
    return float(np.degrees(np.arccos(np.clip(np.dot(a, b), -1.0, 1.0))))


def _send_pose(rot, hips, t, port):
    sk = canonical_skeleton()
    with vmc.VmcSender("127.0.0.1", port) as tx:
        tx.send_pose(sk.names, rot, hips, offsets=sk.offsets, t=t)


def _pose(spine_deg=0.0, arm_down=True):
    sk = canonical_skeleton()
    rot = np.tile([1.0, 0, 0, 0], (sk.n_joints, 1))
    if arm_down:
        rot[sk.index("leftUpperArm")] = A2Q(np.array([0, 0, -np.pi / 2]))      # +X -> -Y (ours)
    rot[sk.index("rightLowerArm")] = A2Q(np.array([0, np.pi / 2, 0]))          # -X -> +Z, forward
    rot[sk.index("spine")] = A2Q(np.array([np.radians(spine_deg), 0, 0]))      # lean forward
    return rot


def test_the_addon_osc_reader_agrees_with_mocap_osc():
    sk = canonical_skeleton()
    for pk in vmc.pose_packets(sk.names, _pose(), np.array([0.0, 0.9, 0.0]), blendshapes={"jawOpen": 0.5},
                               max_bytes=900):
        ours = [(m.address, m.args) for m in osc.iter_messages(osc.decode(pk))]
        theirs = ll.decode_osc(pk)
        assert [a for a, _ in ours] == [a for a, _ in theirs]
        for (_, x), (_, y) in zip(ours, theirs):
            assert x == y
    # the humanoid table matches the canonical skeleton's hierarchy
    par = {n: (sk.names[p] if p >= 0 else None) for n, p in zip(sk.names, sk.parents)}
    for u, v in ll.VRM_FROM_UNITY.items():
        assert vmc.UNITY_BONES[v] == u
        pu = ll.UNITY_PARENT[u]
        assert (vmc.VRM_FROM_UNITY[pu] if pu else None) == par[v], u


def test_received_vmc_pose_moves_the_armature(armature):
    rx = ll.VmcReceiver("127.0.0.1", 0)
    assert rx.address[0] == "127.0.0.1"
    try:
        _send_pose(_pose(spine_deg=30.0), np.array([0.1, 0.9, 0.2]), 1.0, rx.address[1])
        time.sleep(0.05)
        frames = rx.poll()
    finally:
        rx.close()
    assert len(frames) == 1  # Blend/Apply ends the frame: no wait for the next one and len(frames[0]["bones"]) == 52 and frames[0]["time"] == 1.0
    bmap = ll.auto_bone_map([b.name for b in armature.data.bones])
    assert bmap["LeftUpperArm"] == "leftUpperArm" and "UpperChest" not in bmap and len(bmap) == len(BONES)
    # at rest, the left arm points along +X
    bpy.context.view_layer.update()
    assert _angle_deg(_direction(armature, "leftUpperArm"), [1, 0, 0]) < 1e-3
    n = ll.apply_vmc_pose(armature, frames[0], bmap)
    bpy.context.view_layer.update()
    assert n == len(BONES)
    # the spine leans 30 deg forward (-Y in Blender); the chest and head follow it
    lean = [0, -np.sin(np.radians(30)), np.cos(np.radians(30))]
    for b in ("spine", "chest", "head"):
        assert _angle_deg(_direction(armature, b), lean) < 0.5, b
    # the arms hang from the leaning chest: their directions are the posed ones turned by the lean
    c, s_ = np.cos(np.radians(30)), np.sin(np.radians(30))
    R = np.array([[1, 0, 0], [0, c, -s_], [0, s_, c]])  # 30 deg about +X (Blender), the spine's lean
    assert _angle_deg(_direction(armature, "leftUpperArm"), R @ [0, 0, -1]) < 0.5    # down
    assert _angle_deg(_direction(armature, "leftLowerArm"), R @ [0, 0, -1]) < 0.5    # follows, rest local
    assert _angle_deg(_direction(armature, "rightUpperArm"), R @ [-1, 0, 0]) < 0.5   # still out to the side
    assert _angle_deg(_direction(armature, "rightLowerArm"), R @ [0, -1, 0]) < 0.5   # bent forward
    # the legs did not move; the hips went to the sent position: ours (0.1, 0.9, 0.2) = Blender (0.1, -0.2, 0.9)
    assert _angle_deg(_direction(armature, "leftUpperLeg"), [0, 0, -1]) < 0.5
    hips_head = np.array(armature.matrix_world @ armature.pose.bones["hips"].head)
    assert np.allclose(hips_head, [0.1, -0.2, 0.9], atol=1e-4)


def test_live_recording_becomes_an_action_with_bulk_keys(armature):
    bmap = ll.auto_bone_map([b.name for b in armature.data.bones])
    rec = ll.LiveRecording(fps=30.0)
    for k, deg in enumerate((0.0, 15.0, 30.0)):
        sk = canonical_skeleton()
        fold = ll.VmcFrames()
        for p in vmc.pose_packets(sk.names, _pose(spine_deg=deg), np.array([0.0, 0.95, 0.0]), t=2.0 + k / 10):
            done = fold.feed(ll.decode_osc(p))
        (fr,) = done
        ll.apply_vmc_pose(armature, fr, bmap)
        rec.add(armature, fr, bmap)
    assert rec.frames == pytest.approx([1.0, 4.0, 7.0])
    act = rec.to_action(armature, "LiveLink", bmap)
    if hasattr(act, "layers"):
        fcs = act.layers[0].strips[0].channelbag(act.slots[0]).fcurves
    else:
        fcs = act.fcurves
    assert len(fcs) == 4 * len(BONES) + 3
    assert all(len(fc.keyframe_points) == 3 for fc in fcs)
    # playing the action back poses the rig like the live frames did
    for frame, deg in ((1, 0.0), (4, 15.0), (7, 30.0)):
        bpy.context.scene.frame_set(frame)
        bpy.context.view_layer.update()
        lean = [0, -np.sin(np.radians(deg)), np.cos(np.radians(deg))]
        assert _angle_deg(_direction(armature, "spine"), lean) < 0.5


def test_operator_starts_listening_or_says_why_not(armature):
    ll.register()
    busy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    busy.bind(("127.0.0.1", 0))
    try:
        assert hasattr(bpy.ops.understudy, "live_link_stop")
        bpy.context.view_layer.objects.active = None
        with pytest.raises(RuntimeError, match="select an armature first"):
            bpy.ops.understudy.live_link(port=busy.getsockname()[1])
        bpy.context.view_layer.objects.active = armature
        with pytest.raises(RuntimeError, match="cannot listen on 127.0.0.1"):
            bpy.ops.understudy.live_link(port=busy.getsockname()[1])  # the port is taken
        port = busy.getsockname()[1]
        busy.close()
        assert bpy.ops.understudy.live_link(port=port) == {"RUNNING_MODAL"}
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with pytest.raises(OSError):  # the operator holds 127.0.0.1:port now
            probe.bind(("127.0.0.1", port))
        probe.close()
        bpy.ops.understudy.live_link_stop()
    finally:
        busy.close()
        ll.unregister()


def test_unmappable_armature_is_refused_with_the_missing_bones():
    with pytest.raises(LookupError, match="Hips"):
        ll.auto_bone_map(["Bone", "Bone.001"])


def test_receiver_counts_garbage_and_binds_loopback_only():
    rx = ll.VmcReceiver("127.0.0.1", 0)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"nonsense", rx.address)
        s.sendto(osc.encode(osc.Message("/VMC/Ext/T", [1.0])), rx.address)
        s.close()
        time.sleep(0.05)
        assert rx.poll() == [] and rx.bad == 1 and rx.packets == 2
    finally:
        rx.close()


def test_blendshapes_set_shape_keys_of_the_armatures_mesh(armature):
    me = bpy.data.meshes.new("Face")
    me.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
    ob = bpy.data.objects.new("Face", me)
    bpy.context.scene.collection.objects.link(ob)
    ob.parent = armature
    ob.shape_key_add(name="Basis")
    ob.shape_key_add(name="jawOpen")
    ob.shape_key_add(name="eyeBlinkLeft")
    fold = ll.VmcFrames()
    sk = canonical_skeleton()
    for p in vmc.pose_packets(sk.names, _pose(), np.array([0.0, 0.95, 0.0]),
                              blendshapes={"jawOpen": 0.7, "eyeBlinkLeft": 1.4, "mouthSmileLeft": 0.2}):
        frames = fold.feed(ll.decode_osc(p))
    assert len(frames) == 1
    assert ll.apply_vmc_blend(armature, frames[0]) == 2
    kb = ob.data.shape_keys.key_blocks
    assert kb["jawOpen"].value == pytest.approx(0.7, abs=1e-6)
    assert kb["eyeBlinkLeft"].value == pytest.approx(1.0)  # clamped to the slider range


def test_an_a_pose_rig_is_aligned_to_the_t_pose_first(armature):
    """The same VMC frame on a rig whose arms rest 45 deg down (A-pose) gives the same
    world directions as on the T-pose rig."""
    rx_frames = []
    sk = canonical_skeleton()
    fold = ll.VmcFrames()
    for p in vmc.pose_packets(sk.names, _pose(spine_deg=20.0), np.array([0.0, 0.95, 0.0])):
        rx_frames += fold.feed(ll.decode_osc(p))
    (frame,) = rx_frames
    bmap = ll.auto_bone_map([b.name for b in armature.data.bones])
    ll.apply_vmc_pose(armature, frame, bmap)
    bpy.context.view_layer.update()
    want = {b: _direction(armature, b) for b in BONES}
    assert ll.rest_alignment(armature.data, bmap) == {}  # a T-pose rig needs none
    # re-rest the arms 45 deg down (from the shoulder), as an A-pose rig
    bpy.context.view_layer.objects.active = armature
    bpy.ops.object.mode_set(mode="EDIT")
    eb = armature.data.edit_bones
    c = np.cos(np.radians(45))
    for side, x in (("left", 1.0), ("right", -1.0)):
        start = np.array(eb[f"{side}UpperArm"].head)
        for name, length in (("UpperArm", 0.27), ("LowerArm", 0.25), ("Hand", 0.1)):
            b = eb[f"{side}{name}"]
            b.head = start
            start = start + length * np.array([x * c, 0.0, -c])
            b.tail = start
            b.roll = 0.0
    bpy.ops.object.mode_set(mode="OBJECT")
    al = ll.rest_alignment(armature.data, bmap)
    assert set(al) == {f"{s}{b}" for s in ("Left", "Right") for b in ("UpperArm", "LowerArm", "Hand")}
    for q in al.values():
        assert np.degrees(2 * np.arccos(min(1.0, abs(q[0])))) == pytest.approx(45.0, abs=0.01)
    for pb in armature.pose.bones:
        pb.rotation_quaternion = (1, 0, 0, 0)
    ll.apply_vmc_pose(armature, frame, bmap)
    bpy.context.view_layer.update()
    for b in ("leftUpperArm", "leftLowerArm", "leftHand", "rightUpperArm", "rightLowerArm", "rightHand", "spine"):
        assert _angle_deg(_direction(armature, b), want[b]) < 0.5, b


def test_a_real_character_follows_the_streamed_pose():
    """A MakeHuman character with the CMU skeleton (arms resting down and forward, extra
    unmapped hip joints), mapped with the shipped profile: after a streamed pose its limbs
    point where the canonical skeleton's do."""
    glb = shared_file("characters/mh_male_casual_cmu31.glb")
    from mocap.glossary import yup_to_blender
    from mocap.motion import Motion
    from retarget.bonemap import detect_profile

    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=str(glb))
    arm = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    names = [b.name for b in arm.data.bones]
    profile, _ = detect_profile(names)
    bmap = {vmc.UNITY_BONES[c]: b for c, b in profile.resolve(names).items()}
    sk = canonical_skeleton()
    rot = np.tile([1.0, 0, 0, 0], (sk.n_joints, 1))
    for name, aa in {"spine": (0.15, 0, 0), "leftUpperArm": (0.3, 0.2, -1.1), "leftLowerArm": (0, 1.2, 0),
                     "rightUpperArm": (-0.4, 0, 0.9), "rightLowerArm": (0, -0.8, 0),
                     "leftUpperLeg": (-0.6, 0, 0.1), "leftLowerLeg": (0.9, 0, 0), "rightUpperLeg": (0.2, 0, -0.2)}.items():
        rot[sk.index(name)] = A2Q(np.array(aa))
    hips = np.array([0.0, 1.0, 0.0])
    fold = ll.VmcFrames()
    frames = []
    for p in vmc.pose_packets(sk.names, rot, hips, offsets=sk.offsets):
        frames += fold.feed(ll.decode_osc(p))
    ll.apply_vmc_pose(arm, frames[0], bmap)
    bpy.context.view_layer.update()
    P = Motion(skeleton=sk, rotations=rot[None], root_positions=hips[None], fps=30.0).positions()[0]
    for joint, child in (("leftUpperArm", "leftLowerArm"), ("leftLowerArm", "leftHand"),
                         ("rightUpperArm", "rightLowerArm"), ("rightLowerArm", "rightHand"),
                         ("leftUpperLeg", "leftLowerLeg"), ("leftLowerLeg", "leftFoot"),
                         ("rightUpperLeg", "rightLowerLeg")):
        want = yup_to_blender(P[sk.index(child)] - P[sk.index(joint)])
        got = _direction(arm, bmap[vmc.UNITY_BONES[joint]])
        err = _angle_deg(got, want / np.linalg.norm(want))
        print(f"{joint}: {err:.2f} deg")
        assert err < 0.5, joint  # 49 deg off for the upper arm without the rest alignment


def test_a_live_session_applies_what_arrives_and_records_an_action(armature):
    """The operator's tick and finish, driven headless: three frames streamed over UDP,
    ticked as they come, recorded, then written as an action."""
    sess = ll.LiveSession(armature, port=0, record=True, fps=30.0)
    port = sess.rx.address[1]
    try:
        assert sess.tick() == 0
        for k, deg in enumerate((0.0, 10.0, 20.0)):
            _send_pose(_pose(spine_deg=deg), np.array([0.0, 0.95, 0.0]), 5.0 + k / 30.0, port)
            time.sleep(0.05)
            assert sess.tick() == 1
            bpy.context.view_layer.update()
            lean = [0, -np.sin(np.radians(deg)), np.cos(np.radians(deg))]
            assert _angle_deg(_direction(armature, "spine"), lean) < 0.5
    finally:
        msg = sess.finish()
    assert msg.startswith("live link stopped after 3 frames; recorded 3 frames into action 'LiveLink'")
    assert sess.recording.frames == pytest.approx([1.0, 2.0, 3.0])
