"""The take format: round trip, validation, atomic writes, clear errors."""

import json

import numpy as np
import pytest

from mocap import landmarks as L
from mocap.errors import TakeFormatError, UsageError
from mocap.take import Intrinsics, MaskTrack, SourceInfo, Take, load_take, save_take


def make_take(T=20, with_mask=False):
    src = SourceInfo(kind="video", path="clip.mp4", width=640, height=480, rotation_deg=90,
                     nominal_fps=30.0, intrinsics=Intrinsics.from_hfov(640, 480))
    take = Take.empty(T, src, tracker={"model_complexity": 1})
    rng = np.random.default_rng(0)
    take.timestamps = np.cumsum(rng.uniform(0.03, 0.04, T))  # variable frame rate
    take.pose_image[:] = rng.uniform(0, 480, (T, 33, 3))
    take.pose_world[:] = rng.normal(0, 0.3, (T, 33, 3))
    take.pose_visibility[:] = 0.9
    take.present["pose"][:] = True
    take.present["face"][5:] = True
    take.face_image[5:] = 100.0
    if with_mask:
        shape = MaskTrack.mask_shape(640, 480)
        m = np.zeros((T,) + shape, bool)
        m[:, 100:200, 150:250] = True
        take.mask = MaskTrack(bits=np.stack([MaskTrack.pack(x) for x in m]), shape=shape)
    return take


def test_round_trip_keeps_everything(tmp_path):
    take = make_take(with_mask=True)
    save_take(take, tmp_path / "t")
    back = load_take(tmp_path / "t")
    assert len(back) == 20
    np.testing.assert_array_equal(back.timestamps, take.timestamps)  # float64, exact
    np.testing.assert_allclose(back.pose_world, take.pose_world, atol=1e-6)  # < 1 micrometre
    np.testing.assert_array_equal(back.present["face"], take.present["face"])
    assert back.source.rotation_deg == 90 and back.source.intrinsics.fx == pytest.approx(554.256, abs=1e-3)
    assert back.mask.shape == (384, 512)
    assert back.mask.frame(3)[150, 200] and not back.mask.frame(3)[10, 10]
    assert back.coverage()["face"] == pytest.approx(0.75)
    meta = json.loads((tmp_path / "t" / "take.json").read_text())
    assert meta["schema"] == "understudy.take" and meta["schema_version"] == 1
    assert meta["landmarks"]["pose"][15] == "left_wrist"


def test_named_lookup():
    take = make_take()
    np.testing.assert_array_equal(take.landmark("pose", "left_wrist"), take.pose_image[:, L.index("pose", "left_wrist")])
    assert L.index("face", "left_iris_centre") == 473
    with pytest.raises(KeyError, match="no landmark 'left_tail'"):
        take.landmark("pose", "left_tail")


def test_overwrite_replaces_a_take_but_never_an_unrelated_folder(tmp_path):
    save_take(make_take(10), tmp_path / "t")
    save_take(make_take(12), tmp_path / "t")
    assert len(load_take(tmp_path / "t")) == 12
    other = tmp_path / "photos"
    other.mkdir()
    (other / "holiday.jpg").write_bytes(b"x")
    with pytest.raises(UsageError, match="not a take"):
        save_take(make_take(), other)
    assert (other / "holiday.jpg").read_bytes() == b"x"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_failed_write_leaves_the_old_take(tmp_path):
    save_take(make_take(10), tmp_path / "t")
    bad = make_take(10)
    bad.pose_image = bad.pose_image[:5]
    with pytest.raises(TakeFormatError, match="pose_image"):
        save_take(bad, tmp_path / "t")
    assert len(load_take(tmp_path / "t")) == 10


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: (d / "take.json").unlink(), "no take.json"),
        (lambda d: (d / "take.json").write_text("{nope"), "malformed JSON"),
        (lambda d: _edit(d, schema_version=99), "schema_version 99 is not supported"),
        (lambda d: _edit(d, schema="something.else"), "not an Understudy take"),
        (lambda d: _edit(d, frames=7), "says 7 frames"),
        (lambda d: (d / "landmarks.npz").write_bytes(b"garbage"), "not a readable npz"),
        (lambda d: (d / "landmarks.npz").unlink(), "missing landmarks.npz"),
        (lambda d: _drop_array(d, "pose_world"), "missing arrays \\['pose_world'\\]"),
        (lambda d: _pickled_array(d), "not a readable npz"),
        (lambda d: _non_monotonic(d), "timestamps must increase"),
    ],
)
def test_loader_rejects_bad_takes_with_a_clear_message(tmp_path, mutate, message):
    save_take(make_take(), tmp_path / "t")
    mutate(tmp_path / "t")
    with pytest.raises(TakeFormatError, match=message):
        load_take(tmp_path / "t")


def test_missing_take(tmp_path):
    with pytest.raises(TakeFormatError, match="no take at"):
        load_take(tmp_path / "nothing")


def _edit(d, **kw):
    meta = json.loads((d / "take.json").read_text())
    meta.update(kw)
    (d / "take.json").write_text(json.dumps(meta))


def _arrays(d):
    with np.load(d / "landmarks.npz") as z:
        return {k: z[k] for k in z.files}


def _drop_array(d, name):
    a = _arrays(d)
    del a[name]
    np.savez(d / "landmarks.npz", **a)


def _pickled_array(d):
    a = _arrays(d)
    a["pose_world"] = np.array([{"evil": 1}], dtype=object)
    np.savez(d / "landmarks.npz", **a)


def _non_monotonic(d):
    a = _arrays(d)
    a["timestamps"][3] = a["timestamps"][2]
    np.savez(d / "landmarks.npz", **a)
