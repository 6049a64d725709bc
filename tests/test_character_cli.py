"""``understudy character``: new, presets, check (figures and exit code), bad options."""

from __future__ import annotations

import numpy as np
import pytest

from mocap.cli import main
from retarget import character as C
from retarget import gltf
from retarget.rig import load_rig

from .conftest import shared_file

pytest.importorskip("skimage", reason="scikit-image (marching cubes) is a dependency of retarget.character")


def test_new_check_and_presets(tmp_path, capsys):
    out = tmp_path / "actor.glb"
    assert main(["character", "new", "--preset", "ada", "--height", "1.6", "--proportions", "legs=1.05,arms=0.97",
                 "--seed", "3", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ada 1.600 m" in text and "52 face shape keys" in text
    assert out.stat().st_size < 10e6  # sparse morph targets
    rig = load_rig(out)
    assert abs(float(np.ptp(rig.meshes[0].vertices[:, 1])) - 1.6) < 0.01
    info = gltf.load_gltf(out).extra["extras"]["understudy_character"]
    assert info["proportions"]["legs"] == pytest.approx(1.05, abs=0.03) and info["seed"] == 3
    walk = shared_file("mocap/cmu_131_01_walk.bvh")
    assert main(["character", "check", str(out), "--motion", str(walk), "--frame-step", "24",
                 "--height", "1.6"]) == 0
    text = capsys.readouterr().out
    assert "closed surface: yes" in text and "(tolerance 0.750)" in text and "left_knee: volume change" in text
    assert "passed: every figure within its tolerance" in text
    assert main(["character", "presets"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in C.PRESETS)


def test_check_fails_with_exit_1_on_a_torn_mesh(tmp_path, capsys):
    m = C.generate_character(preset="chen")
    doc = C.character_document(m)
    doc.meshes[0].primitives[0].indices = doc.meshes[0].primitives[0].indices[3:]
    bad = gltf.write_glb(doc, tmp_path / "torn.glb")
    assert main(["character", "check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "closed surface: NO" in out and "FAIL: mesh is not closed" in out


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    assert main(["character", "new", "--proportions", "legs:1.1", "-o", str(tmp_path / "x.glb")]) == 2
    assert "legs:1.1" in capsys.readouterr().err
    assert main(["character", "new", "--preset", "zed", "-o", str(tmp_path / "x.glb")]) == 2
    assert main(["character", "rig", str(tmp_path / "none.obj"), "-o", str(tmp_path / "r.glb")]) == 1
    assert "no such file" in capsys.readouterr().err
