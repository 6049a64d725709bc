"""retarget.gltf: reading, writing and validating glTF 2.0 without Blender.

A hand-built file exercises every decoding rule (byteStride, normalized integers,
sparse accessors, matrices, data URIs, external buffers); the shared characters are
round-tripped (load -> write_glb -> load gives identical TRS, bind matrices, vertices,
morph target names) and validated; corrupted copies of a real file each fail with a
FileFormatError naming the problem."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from mocap.errors import FileFormatError, UsageError
from retarget import gltf
from retarget.gltf import load_gltf, validate_glb, write_glb

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CHARACTERS = SHARED / "characters"
FILES = [
    "RobotExpressive.glb",
    "CesiumMan_blender_reexport.glb",
    "RiggedSimple_blender_reexport.glb",
    "VRMC_materials_mtoon_UV_Animation_Test.vrm",
    "mh_male_casual_cmu31.glb",
    "mh_male_dark_game53.glb",
]


def character(name: str) -> Path:
    p = CHARACTERS / name
    if not p.exists():
        pytest.skip(f"../shared/characters/{name} is not present (real test data lives beside the checkout)")
    return p


# -- an independent GLB (un)packer for the tests ------------------------------------------


def glb_split(data: bytes) -> tuple[dict, bytes]:
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data)
    jlen, jtype = struct.unpack_from("<II", data, 12)
    js = json.loads(data[20:20 + jlen])
    pos = 20 + jlen
    blen, btype = struct.unpack_from("<II", data, pos)
    return js, data[pos + 8:pos + 8 + blen]


def glb_join(js: dict, blob: bytes) -> bytes:
    text = json.dumps(js).encode()
    text += b" " * (-len(text) % 4)
    blob += b"\0" * (-len(blob) % 4)
    total = 12 + 8 + len(text) + 8 + len(blob)
    return (struct.pack("<4sII", b"glTF", 2, total) + struct.pack("<II", len(text), 0x4E4F534A) + text
            + struct.pack("<II", len(blob), 0x004E4942) + blob)


# -- a hand-built file ----------------------------------------------------------------------


def synthetic() -> tuple[dict, bytes]:
    """Three vertices with interleaved POSITION/NORMAL (byteStride 24), normalized
    UNSIGNED_BYTE weights, a sparse morph target, uint16 indices, a skin whose inverse
    bind matrix translates by (1, 2, 3), a node given as a matrix and a rotation
    animation stored as normalized SHORTs."""
    pos = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype="<f4")
    nrm = np.array([[0, 0, 1]] * 3, dtype="<f4")
    inter = np.concatenate([pos, nrm], axis=1).astype("<f4").tobytes()  # 3 x 24 bytes
    weights = np.array([[255, 0, 0, 0], [128, 127, 0, 0], [0, 0, 0, 255]], dtype="u1").tobytes()
    joints = np.zeros((3, 4), dtype="u1").tobytes()
    idx = np.array([0, 1, 2], dtype="<u2").tobytes() + b"\0\0"
    ibm = np.eye(4, dtype="<f4")
    ibm[:3, 3] = [1, 2, 3]
    ibm_bytes = ibm.T.astype("<f4").tobytes()  # column-major
    sp_idx = np.array([2], dtype="u1").tobytes() + b"\0\0\0"
    sp_val = np.array([0, 0.5, 0], dtype="<f4").tobytes()
    times = np.array([0, 1], dtype="<f4").tobytes()
    rot = np.array([[0, 0, 0, 32767], [0, 23170, 0, 23170]], dtype="<i2").tobytes()  # xyzw
    parts = [inter, weights, joints, idx, ibm_bytes, sp_idx, sp_val, times, rot]
    blob, views = b"", []
    for p in parts:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(p)})
        blob += p
    views[0]["byteStride"] = 24
    js = {
        "asset": {"version": "2.0"},
        "scene": 0,
        "scenes": [{"nodes": [0, 1]}],
        "nodes": [
            {"name": "joint", "translation": [0, 1, 0], "children": [2]},
            {"name": "skinned", "mesh": 0, "skin": 0},
            {"name": "matrix", "matrix": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 5, 6, 7, 1]},
        ],
        "meshes": [{"name": "tri", "primitives": [{
            "attributes": {"POSITION": 0, "NORMAL": 1, "WEIGHTS_0": 2, "JOINTS_0": 3},
            "indices": 4, "targets": [{"POSITION": 6}]}],
            "weights": [0.0], "extras": {"targetNames": ["Lift"]}}],
        "skins": [{"joints": [0], "inverseBindMatrices": 5}],
        "animations": [{"name": "turn", "channels": [{"sampler": 0, "target": {"node": 0, "path": "rotation"}}],
                        "samplers": [{"input": 7, "output": 8}]}],
        "accessors": [
            {"bufferView": 0, "byteOffset": 0, "componentType": 5126, "count": 3, "type": "VEC3",
             "min": [0, 0, 0], "max": [1, 1, 0]},
            {"bufferView": 0, "byteOffset": 12, "componentType": 5126, "count": 3, "type": "VEC3"},
            {"bufferView": 1, "componentType": 5121, "normalized": True, "count": 3, "type": "VEC4"},
            {"bufferView": 2, "componentType": 5121, "count": 3, "type": "VEC4"},
            {"bufferView": 3, "componentType": 5123, "count": 3, "type": "SCALAR"},
            {"bufferView": 4, "componentType": 5126, "count": 1, "type": "MAT4"},
            {"componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [0, 0.5, 0],
             "sparse": {"count": 1, "indices": {"bufferView": 5, "componentType": 5121},
                        "values": {"bufferView": 6}}},
            {"bufferView": 7, "componentType": 5126, "count": 2, "type": "SCALAR", "min": [0], "max": [1]},
            {"bufferView": 8, "componentType": 5122, "normalized": True, "count": 2, "type": "VEC4"},
        ],
        "bufferViews": views,
        "buffers": [{"byteLength": len(blob)}],
    }
    return js, blob


def check_synthetic(doc: gltf.GltfDocument) -> None:
    prim = doc.meshes[0].primitives[0]
    np.testing.assert_array_equal(prim.attributes["POSITION"], [[0, 0, 0], [1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(prim.attributes["NORMAL"], [[0, 0, 1]] * 3)  # read through byteStride 24
    w = prim.attributes["WEIGHTS_0"]
    assert w.dtype == np.float32
    np.testing.assert_allclose(w[1], [128 / 255, 127 / 255, 0, 0], rtol=1e-6)
    assert prim.attributes["JOINTS_0"].dtype == np.uint8
    np.testing.assert_array_equal(prim.indices, [0, 1, 2])
    np.testing.assert_array_equal(prim.targets[0]["POSITION"], [[0, 0, 0], [0, 0, 0], [0, 0.5, 0]])  # sparse
    assert doc.meshes[0].target_names == ["Lift"]
    ibm = doc.skins[0].inverse_bind_matrices
    np.testing.assert_array_equal(ibm[0][:3, 3], [1, 2, 3])  # row-major, acting on column vectors
    m = doc.nodes[2]
    np.testing.assert_array_equal(m.local_matrix()[:3, 3], [5, 6, 7])
    np.testing.assert_array_equal(m.translation, [5, 6, 7])
    np.testing.assert_array_equal(doc.nodes[0].rotation, [1, 0, 0, 0])  # default, wxyz
    out = doc.animations[0].samplers[0].output
    np.testing.assert_allclose(out[0], [1, 0, 0, 0], atol=1e-6)  # xyzw in the file, wxyz here
    np.testing.assert_allclose(out[1], [23170 / 32767, 0, 23170 / 32767, 0], atol=1e-6)


def test_hand_built_glb_decodes_every_rule(tmp_path):
    js, blob = synthetic()
    p = tmp_path / "syn.glb"
    p.write_bytes(glb_join(js, blob))
    assert validate_glb(p) == []
    check_synthetic(load_gltf(p))


def test_gltf_with_data_uri_and_with_external_bin(tmp_path):
    js, blob = synthetic()
    js["buffers"][0]["uri"] = "data:application/octet-stream;base64," + base64.b64encode(blob).decode()
    (tmp_path / "embedded.gltf").write_text(json.dumps(js))
    check_synthetic(load_gltf(tmp_path / "embedded.gltf"))
    js["buffers"][0]["uri"] = "syn data.bin"
    (tmp_path / "syn data.bin").write_bytes(blob)
    (tmp_path / "external.gltf").write_text(json.dumps(js))
    check_synthetic(load_gltf(tmp_path / "external.gltf"))
    assert validate_glb(tmp_path / "external.gltf") == []


def test_writer_rebuilds_buffers_and_reloads_the_same_values(tmp_path):
    js, blob = synthetic()
    (tmp_path / "syn.glb").write_bytes(glb_join(js, blob))
    out = write_glb(load_gltf(tmp_path / "syn.glb"), tmp_path / "out.glb")
    assert validate_glb(out) == []
    check_synthetic(load_gltf(out))
    wjs, wblob = glb_split(out.read_bytes())
    views = wjs["bufferViews"]
    assert all(v["byteOffset"] % 4 == 0 for v in views)
    pos_acc = wjs["accessors"][wjs["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]
    assert pos_acc["min"] == [0, 0, 0] and pos_acc["max"] == [1, 1, 0]
    t_acc = wjs["accessors"][wjs["animations"][0]["samplers"][0]["input"]]
    assert t_acc["min"] == [0] and t_acc["max"] == [1]
    # the morph target (one of three rows non-zero) is written sparse, everything else dense
    tgt = wjs["accessors"][wjs["meshes"][0]["primitives"][0]["targets"][0]["POSITION"]]
    assert "bufferView" not in tgt and tgt["sparse"]["count"] == 1
    assert tgt["min"] == [0, 0, 0] and tgt["max"] == [0, 0.5, 0]
    assert sum("sparse" in a for a in wjs["accessors"]) == 1
    assert not list(tmp_path.glob(".*.tmp"))


def test_morph_targets_are_written_sparse_and_read_back_exactly(tmp_path):
    rng = np.random.default_rng(3)
    n = 300
    V = rng.normal(size=(n, 3)).astype(np.float32)
    face = np.zeros((n, 3), dtype=np.float32)  # touches rows 250..299 (indices past 255: uint16)
    face[250:] = rng.normal(size=(50, 3)) * 0.01
    half = np.zeros((n, 3), dtype=np.float32)  # touches 200 of 300 rows: dense is smaller
    half[:200] = 0.02
    still = np.zeros((n, 3), dtype=np.float32)  # touches nothing
    doc = gltf.GltfDocument()
    doc.meshes.append(gltf.Mesh(name="m", primitives=[gltf.Primitive(
        attributes={"POSITION": V}, targets=[{"POSITION": face}, {"POSITION": half}, {"POSITION": still}])],
        weights=[0.0, 0.0, 0.0]))
    doc.nodes.append(gltf.Node(name="m", mesh=0))
    doc.scenes = [{"nodes": [0]}]
    out = write_glb(doc, tmp_path / "sparse.glb")
    assert validate_glb(out) == []
    js, blob = glb_split(out.read_bytes())
    acc = [js["accessors"][t["POSITION"]] for t in js["meshes"][0]["primitives"][0]["targets"]]
    assert acc[0]["sparse"]["count"] == 50 and acc[0]["sparse"]["indices"]["componentType"] == 5123
    assert "bufferView" not in acc[0] and "sparse" not in acc[1] and "bufferView" in acc[1]
    assert "sparse" not in acc[2] and "bufferView" not in acc[2]  # all zeros: no data at all
    np.testing.assert_allclose(acc[0]["min"], np.minimum(face.min(0), 0), atol=0)
    # an independent decode of the sparse part: strictly increasing indices, values in order
    sp = acc[0]["sparse"]
    iv, vv = js["bufferViews"][sp["indices"]["bufferView"]], js["bufferViews"][sp["values"]["bufferView"]]
    idx = np.frombuffer(blob, dtype="<u2", count=50, offset=iv["byteOffset"])
    np.testing.assert_array_equal(idx, np.arange(250, 300))
    vals = np.frombuffer(blob, dtype="<f4", count=150, offset=vv["byteOffset"]).reshape(50, 3)
    np.testing.assert_array_equal(vals, face[250:])
    assert "target" not in iv and "target" not in vv  # sparse views carry no target
    prim = load_gltf(out).meshes[0].primitives[0]
    for got, want in zip(prim.targets, (face, half, still)):
        np.testing.assert_array_equal(got["POSITION"], want)


def test_matrices_of_bytes_have_padded_columns():
    # MAT2 of signed bytes: each 2-byte column is padded to 4 bytes (glTF 2.0 data alignment)
    raw = bytes([1, 2, 0, 0, 3, 4, 0, 0])
    js = {"asset": {"version": "2.0"}, "buffers": [{"byteLength": 8}],
          "bufferViews": [{"buffer": 0, "byteLength": 8}],
          "accessors": [{"bufferView": 0, "componentType": 5120, "count": 1, "type": "MAT2"}]}
    m = gltf._Decoder(js, [raw], Path("mem.gltf")).accessor(0)
    np.testing.assert_array_equal(m[0], [[1, 3], [2, 4]])  # columns (1, 2) and (3, 4)


def test_animation_sampling_follows_the_interpolation_rules():
    s = gltf.Sampler(input=np.array([0.0, 1.0], dtype=np.float32),
                     output=np.array([[0, 0, 0], [2, 4, 6]], dtype=np.float32))
    np.testing.assert_allclose(gltf.sample_sampler(s, [-1, 0.25, 2]), [[0, 0, 0], [0.5, 1, 1.5], [2, 4, 6]])
    s.interpolation = "STEP"
    np.testing.assert_allclose(gltf.sample_sampler(s, [0.99, 1.0]), [[0, 0, 0], [2, 4, 6]])
    half = np.array([np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0])  # 90 deg about Y, wxyz
    r = gltf.Sampler(input=np.array([0.0, 1.0]), output=np.array([[1.0, 0, 0, 0], half]))
    mid = gltf.sample_sampler(r, [0.5], rotation=True)[0]
    np.testing.assert_allclose(mid, [np.cos(np.pi / 8), 0, np.sin(np.pi / 8), 0], atol=1e-12)  # slerp
    # CUBICSPLINE with zero tangents: smoothstep between the values
    c = gltf.Sampler(input=np.array([0.0, 1.0]), output=np.array([[0.0], [0.0], [0.0], [0.0], [1.0], [0.0]]),
                     interpolation="CUBICSPLINE")
    assert gltf.sample_sampler(c, [0.5])[0, 0] == pytest.approx(0.5)
    assert gltf.sample_sampler(c, [0.25])[0, 0] == pytest.approx(3 * 0.25**2 - 2 * 0.25**3)


def test_trs_matrix_round_trip():
    rng = np.random.default_rng(1)
    q = rng.normal(size=(10, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q[q[:, 0] < 0] *= -1
    t, s = rng.normal(size=(10, 3)), rng.uniform(0.5, 2, size=(10, 3))
    t2, q2, s2 = gltf.matrix_to_trs(gltf.trs_to_matrix(t, q, s))
    np.testing.assert_allclose(t2, t, atol=1e-12)
    np.testing.assert_allclose(q2, q, atol=1e-9)
    np.testing.assert_allclose(s2, s, atol=1e-12)


# -- the shared characters ------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_shared_file_validates_and_round_trips_exactly(name, tmp_path):
    src = character(name)
    assert validate_glb(src) == []
    a = load_gltf(src)
    out = write_glb(a, tmp_path / (Path(name).stem + ".glb"))
    assert validate_glb(out) == []
    b = load_gltf(out)
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    for na, nb in zip(a.nodes, b.nodes):
        assert na.children == nb.children
        for attr in ("translation", "rotation", "scale"):
            assert np.array_equal(getattr(na, attr), getattr(nb, attr)), (na.name, attr)
    assert len(a.skins) == len(b.skins)
    for sa, sb in zip(a.skins, b.skins):
        assert sa.joints == sb.joints
        assert sa.inverse_bind_matrices.dtype == np.float32
        assert np.array_equal(sa.inverse_bind_matrices, sb.inverse_bind_matrices)
    for ma, mb in zip(a.meshes, b.meshes):
        assert ma.target_names == mb.target_names
        for pa, pb in zip(ma.primitives, mb.primitives):
            assert pb.attributes["POSITION"].dtype == np.float32
            assert np.array_equal(pa.attributes["POSITION"], pb.attributes["POSITION"])  # exact float32
            assert np.array_equal(pa.indices, pb.indices)
            for ta, tb in zip(pa.targets, pb.targets):
                assert np.array_equal(ta["POSITION"], tb["POSITION"])
    assert [x.name for x in a.animations] == [x.name for x in b.animations]
    assert [im.data for im in a.images] == [im.data for im in b.images]
    assert a.materials == b.materials and a.extensions == b.extensions


def test_robot_expressive_animations_and_morph_targets():
    doc = load_gltf(character("RobotExpressive.glb"))
    assert sorted(a.name for a in doc.animations) == sorted(
        ["Dance", "Death", "Idle", "Jump", "No", "Punch", "Running", "Sitting", "Standing", "ThumbsUp",
         "Walking", "WalkJump", "Wave", "Yes"])
    assert len(doc.skins) == 4 and all(len(s.joints) == 43 for s in doc.skins)
    named = [m.target_names for m in doc.meshes if m.n_targets]
    assert named == [["Angry", "Surprised", "Sad"]] * 3
    walk = doc.animations[[a.name for a in doc.animations].index("Walking")]
    rot = [walk.samplers[c.sampler].output for c in walk.channels if c.path == "rotation"]
    assert all(np.allclose(np.linalg.norm(o, axis=1), 1, atol=1e-5) for o in rot)


def test_vrm_extension_is_kept_raw():
    doc = load_gltf(character("VRMC_materials_mtoon_UV_Animation_Test.vrm"))
    hb = doc.extensions["VRMC_vrm"]["humanoid"]["humanBones"]
    assert len(hb) == 53 and doc.nodes[hb["hips"]["node"]].name == "hips"
    assert "VRMC_materials_mtoon" in doc.extensions_used


# -- corrupted files ---------------------------------------------------------------------


@pytest.fixture
def simple_glb() -> bytes:
    return character("RiggedSimple_blender_reexport.glb").read_bytes()


def expect_error(tmp_path, data: bytes, *words: str, structural: bool = True) -> str:
    p = tmp_path / "broken.glb"
    p.write_bytes(data)
    with pytest.raises(FileFormatError) as e:
        load_gltf(p)
    msg = str(e.value)
    assert str(p) in msg
    for w in words:
        assert w in msg, msg
    if structural:
        assert validate_glb(p), "validate_glb must report the problem too"
    return msg


def test_bad_magic(tmp_path, simple_glb):
    expect_error(tmp_path, b"glTX" + simple_glb[4:], "magic", "glTX")


def test_wrong_container_version(tmp_path, simple_glb):
    expect_error(tmp_path, simple_glb[:4] + struct.pack("<I", 1) + simple_glb[8:], "version 1")


def test_truncated_file(tmp_path, simple_glb):
    expect_error(tmp_path, simple_glb[:-1000], "truncated", str(len(simple_glb)))


def test_truncated_bin_chunk(tmp_path, simple_glb):
    cut = simple_glb[:-1000]
    fixed = cut[:8] + struct.pack("<I", len(cut)) + cut[12:]  # a header that agrees, a short BIN chunk
    expect_error(tmp_path, fixed, "truncated BIN chunk")


def test_bad_json(tmp_path, simple_glb):
    body = bytearray(simple_glb)
    body[20:30] = b"{{{{{{{{{{"  # same length, so the chunk structure stays intact
    expect_error(tmp_path, bytes(body), "bad JSON")


def test_accessor_past_the_buffer(tmp_path, simple_glb):
    js, blob = glb_split(simple_glb)
    pos = js["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    js["accessors"][pos]["count"] *= 100
    msg = expect_error(tmp_path, glb_join(js, blob), f"accessor {pos}", "past its end", "POSITION")
    assert "mesh 0" in msg


def test_buffer_view_past_the_buffer(tmp_path, simple_glb):
    js, blob = glb_split(simple_glb)
    js["bufferViews"][0]["byteLength"] += len(blob)
    expect_error(tmp_path, glb_join(js, blob), "bufferView 0", "past the end of buffer 0")


def test_unsupported_component_type(tmp_path, simple_glb):
    js, blob = glb_split(simple_glb)
    js["accessors"][0]["componentType"] = 5130  # DOUBLE is not glTF
    expect_error(tmp_path, glb_join(js, blob), "unsupported componentType 5130")


def test_required_draco_is_refused_clearly(tmp_path, simple_glb):
    js, blob = glb_split(simple_glb)
    js["extensionsUsed"] = js["extensionsRequired"] = ["KHR_draco_mesh_compression"]
    # structurally valid glTF (the validator passes it); we just cannot decode it
    expect_error(tmp_path, glb_join(js, blob), "KHR_draco_mesh_compression", "uncompressed", structural=False)


def test_validator_names_structural_problems(tmp_path, simple_glb):
    js, blob = glb_split(simple_glb)
    skin = js["skins"][0]
    skin["joints"].append(len(js["nodes"]) + 5)  # not a node; IBM count now wrong too
    acc = js["animations"][0]["samplers"][0]["input"]
    del js["accessors"][acc]["min"]
    js["nodes"][0].setdefault("children", []).append(js["scenes"][0]["nodes"][0])  # a root gets a parent
    p = tmp_path / "bad.glb"
    p.write_bytes(glb_join(js, blob))
    text = "\n".join(validate_glb(p))
    assert "is not a node" in text
    assert f"inverseBindMatrices for {len(skin['joints'])} joints" in text
    assert "lacks the required min/max" in text
    assert "listed as a root but has parent" in text


def test_validator_checks_times_and_weights(tmp_path):
    js, blob = synthetic()
    blob = bytearray(blob)
    tv = js["bufferViews"][7]
    blob[tv["byteOffset"]:tv["byteOffset"] + 8] = np.array([1, 0], dtype="<f4").tobytes()  # times decrease
    js["accessors"][7]["min"], js["accessors"][7]["max"] = [0], [1]
    wv = js["bufferViews"][1]
    blob[wv["byteOffset"]:wv["byteOffset"] + 4] = bytes([100, 0, 0, 0])  # weights sum to 0.39
    jv = js["bufferViews"][2]
    blob[jv["byteOffset"] + 4] = 3  # vertex 1 bound to joint 3 of a 1-joint skin
    p = tmp_path / "bad.glb"
    p.write_bytes(glb_join(js, bytes(blob)))
    text = "\n".join(validate_glb(p))
    assert "not strictly increasing" in text
    assert "weights do not sum to 1" in text and "0.3922" in text
    assert "JOINTS_0 index 3 >= 1 skin joints" in text


def test_write_refuses_non_finite_values_and_leaves_nothing(tmp_path):
    js, blob = synthetic()
    (tmp_path / "syn.glb").write_bytes(glb_join(js, blob))
    doc = load_gltf(tmp_path / "syn.glb")
    doc.nodes[0].translation = np.array([np.nan, 0, 0])
    with pytest.raises(UsageError, match="non-finite"):
        write_glb(doc, tmp_path / "nan.glb")
    assert not (tmp_path / "nan.glb").exists() and not list(tmp_path.glob(".*.tmp"))
    doc.nodes[0].translation = np.zeros(3)
    with pytest.raises(UsageError, match="name the file .glb"):
        write_glb(doc, tmp_path / "text.gltf")
