"""`understudy batch`: takes x characters x settings from a manifest, in worker processes
(local or dask.distributed); skips what exists, survives failing jobs, reports every
manifest problem at once, stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mocap.bvh import load_bvh, save_bvh
from mocap.motion import Motion
from retarget.batch import ManifestError, load_manifest, plan_jobs
from retarget.gltf import load_gltf, validate_glb
from retarget.rig import animation_to_motion, load_rig

from .conftest import ROOT, shared_file
from .test_retarget_cli import ok, understudy

FRAMES = 20


def small_skeleton_rig(path: Path) -> Path:
    """A skeleton-only character: the CMU hop's skeleton without fingers and thumbs, 1 frame."""
    sk = load_bvh(shared_file("mocap/cmu_131_03_hop.bvh")).skeleton
    sk = sk.subset([n for n in sk.names if n not in {"LFingers", "LThumb", "RFingers", "RThumb"}])
    save_bvh(Motion(skeleton=sk, rotations=np.tile([1.0, 0, 0, 0], (1, len(sk), 1)),
                    root_positions=sk.offsets[:1], fps=30), path)
    return path


def link(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src)
    return dst


@pytest.fixture
def project(tmp_path):
    """A folder with two takes (the CMU walk and hop) and two characters (the MakeHuman
    GLB and a small BVH skeleton), and a manifest writer."""
    link(shared_file("mocap/cmu_131_01_walk.bvh"), tmp_path / "takes" / "walk.bvh")
    link(shared_file("mocap/cmu_131_03_hop.bvh"), tmp_path / "takes" / "hop.bvh")
    link(shared_file("characters/mh_male_casual_cmu31.glb"), tmp_path / "characters" / "hero.glb")
    small_skeleton_rig(tmp_path / "characters" / "skeleton.bvh")

    def manifest(extra_characters: str = "", formats: str = '["bvh", "glb"]', name: str = "batch.toml") -> Path:
        text = f"""
            schema = "understudy.batch"
            schema_version = 1
            output_dir = "out"

            [[take]]
            path = "takes/walk.bvh"
            frames = "0:{FRAMES}"

            [[take]]
            path = "takes/hop.bvh"
            name = "hop"
            frames = "0:{FRAMES}"

            [[character]]
            path = "characters/hero.glb"

            [[character]]
            path = "characters/skeleton.bvh"
            name = "skel"
            {extra_characters}

            [settings]
            fps = 30
            formats = {formats}
        """
        p = tmp_path / name
        p.write_text("\n".join(line.strip() for line in text.splitlines()) + "\n")
        return p

    return tmp_path, manifest


JOBS = ("walk__hero", "walk__skel", "hop__hero", "hop__skel")


def check_outputs(out: Path) -> dict[str, bytes]:
    """Every job's BVH and GLB are complete, on the character's skeleton, 20 frames."""
    hero = load_rig(out.parent / "characters" / "hero.glb").skeleton.names
    skel = load_bvh(out.parent / "characters" / "skeleton.bvh").skeleton.names
    for job in JOBS:
        m = load_bvh(out / f"{job}.bvh", scale=1.0)
        assert m.n_frames == FRAMES and m.skeleton.names == (hero if job.endswith("hero") else skel)
        assert validate_glb(out / f"{job}.glb") == []
        if job.endswith("hero"):
            assert animation_to_motion(load_rig(out / f"{job}.glb"), "understudy", fps=30.0).n_frames == FRAMES
        else:  # a skeleton-only character gives a GLB of bare nodes (no skin) with the animation
            anim = load_gltf(out / f"{job}.glb").animations
            assert len(anim) == 1 and {len(s.input) for s in anim[0].samplers} == {FRAMES}
        assert (out / f"{job}.map.toml").is_file()
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix == ".bvh"}


def summary_rows(stdout: str) -> dict[str, list[str]]:
    return {line.split()[0]: line.split() for line in stdout.splitlines() if line.split()[:1] and "__" in line.split()[0]}


def test_two_takes_by_two_characters_then_rerun_skips_all(project):
    root, manifest = project
    m = manifest()
    r = ok(understudy("batch", m, "--workers", "2"))
    rows = summary_rows(r.stdout)
    assert sorted(rows) == sorted(JOBS) and all(row[1] == "ok" for row in rows.values())
    assert "4 jobs: 4 ok, 0 failed" in r.stdout
    first = check_outputs(root / "out")
    assert not [p for p in (root / "out").iterdir() if p.name.startswith(".")]  # no temporary files left
    stamp = {p.name: p.stat().st_mtime_ns for p in (root / "out").iterdir()}

    r = ok(understudy("batch", m))
    rows = summary_rows(r.stdout)
    assert all(row[1] == "skipped" for row in rows.values()) and len(rows) == 4
    assert "4 jobs: 0 ok, 4 skipped, 0 failed" in r.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (root / "out").iterdir()} == stamp

    (root / "out" / "hop__skel.glb").unlink()  # a missing output is redone, and only that one
    r = ok(understudy("batch", m, "--dry-run"))
    assert "hop__skel: run: hop__skel.bvh, hop__skel.glb" in r.stdout and "walk__hero: skip" in r.stdout
    r = ok(understudy("batch", m, "-q"))
    assert summary_rows(r.stdout)["hop__skel"][1] == "ok" and "1 ok, 3 skipped" in r.stdout
    assert check_outputs(root / "out") == first
    # a batch job writes what the single command writes
    ok(understudy("retarget", root / "takes" / "hop.bvh", "--rig", root / "characters" / "skeleton.bvh",
                  "-o", root / "single.bvh", "--fps", "30", "--frames", f"0:{FRAMES}"))
    assert (root / "single.bvh").read_bytes() == first["hop__skel.bvh"]


def test_a_broken_character_fails_its_jobs_only(project):
    root, manifest = project
    (root / "characters" / "broken.glb").write_text("I am a text file, not a character\n")
    m = manifest('[[character]]\npath = "characters/broken.glb"', formats='["bvh"]')
    r = understudy("batch", m)
    assert r.returncode == 1, r.stderr
    rows = summary_rows(r.stdout)
    assert {k: v[1] for k, v in rows.items()} == {**{j: "ok" for j in JOBS}, "walk__broken": "failed",
                                                   "hop__broken": "failed"}
    reason = next(line for line in r.stdout.splitlines() if line.startswith("walk__broken"))
    assert "broken.glb: not a glTF file" in reason  # the one-line reason, in the table
    assert "6 jobs: 4 ok, 2 failed" in r.stdout
    assert sorted(p.name for p in (root / "out").glob("*.bvh")) == sorted(f"{j}.bvh" for j in JOBS)


def test_manifest_problems_are_all_reported_before_anything_runs(project):
    root, manifest = project
    m = root / "bad.toml"
    (root / "maps").mkdir()
    (root / "maps" / "typo.toml").write_text('schema = "understudy.bonemap"\nschema_version = 1\nname = "t"\n'
                                             '[bones]\nhipz = "Hips"\n')
    outside = shared_file("mocap/cmu_60_10_salsa_scaled.bvh")
    m.write_text(f"""
schema = "understudy.batch"
schema_version = 1
colour = "blue"

[[take]]
path = "takes/walk.bvh"

[[take]]
path = "takes/walk.bvh"

[[take]]
path = "../elsewhere/run.bvh"

[[take]]
path = "{outside}"

[[take]]
path = "takes/missing.bvh"
nmae = "x"

[[character]]
path = "characters/hero.glb"
map = "maps/typo.toml"

[settings]
formats = ["glb", "obj"]
foot_ik = "yes"
""")
    r = understudy("batch", m)
    assert r.returncode == 1
    err = r.stderr
    assert "9 problems in the batch manifest, nothing was run" in err
    for needle in ("unknown key(s) 'colour'", "two [[take]] entries are named 'walk'", "'../elsewhere/run.bvh' is outside",
                   f"'{outside}' is outside", "'takes/missing.bvh' does not exist", "take[5]: unknown key(s) 'nmae'",
                   "'hipz' is not a canonical joint name", "formats: must be a list of glb, bvh, fbx",
                   "foot_ik: must be true, false"):
        assert needle in err, needle
    assert not (root / "out").exists()
    with pytest.raises(ManifestError) as info:
        load_manifest(m)
    assert len(info.value.problems) == 9
    # the same outside take is fine when the user allows it
    ok_manifest = root / "outside.toml"
    ok_manifest.write_text(f'schema = "understudy.batch"\nschema_version = 1\n[[take]]\npath = "{outside}"\n'
                           f'[[character]]\npath = "characters/hero.glb"\n')
    with pytest.raises(ManifestError, match="is outside"):
        load_manifest(ok_manifest)
    jobs = plan_jobs(load_manifest(ok_manifest, allow_outside=True))
    assert [j.name for j in jobs] == ["cmu_60_10_salsa_scaled__hero"]
    assert jobs[0].outputs == (str(root / "out" / "cmu_60_10_salsa_scaled__hero.glb"),)


def test_settings_variants_multiply_the_jobs(project):
    root, manifest = project
    m = manifest()
    m.write_text(m.read_text().replace("fps = 30", "fps = [24, 30]\nfoot_ik = [true, false]"))
    jobs = plan_jobs(load_manifest(m))
    assert len(jobs) == 2 * 2 * 4
    assert "walk__hero__foot_ik-off__fps-24" in [j.name for j in jobs]
    j = next(j for j in jobs if j.name == "hop__skel__foot_ik-on__fps-30")
    assert j.options.foot_ik is True and j.options.fps == 30.0 and j.options.frames == (0, FRAMES)
    assert j.outputs == (str(root / "out" / "hop__skel__foot_ik-on__fps-30.bvh"),
                         str(root / "out" / "hop__skel__foot_ik-on__fps-30.glb"))


def test_dask_cluster_gives_the_same_outputs(project):
    distributed = pytest.importorskip("distributed")
    root, manifest = project
    local_m = manifest()
    ok(understudy("batch", local_m, "-q"))
    local = check_outputs(root / "out")

    dask_m = manifest(name="dask.toml")
    dask_m.write_text(dask_m.read_text().replace('output_dir = "out"', 'output_dir = "out_dask"'))
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        r = ok(understudy("batch", dask_m, "--scheduler", cluster.scheduler_address, "-q"))
    assert "4 jobs: 4 ok, 0 failed" in r.stdout
    assert check_outputs(root / "out_dask") == local
    bad = understudy("batch", dask_m, "--scheduler", "tcp://127.0.0.1:9", "--workers", "2")
    assert bad.returncode == 2 and "--workers is for local runs" in bad.stderr


def test_ctrl_c_stops_cleanly_keeping_finished_outputs(project):
    pytest.importorskip("bpy", reason="FBX jobs (through Blender) are the slow ones this test interrupts")
    root, manifest = project
    m = manifest(formats='["fbx"]')
    proc = subprocess.Popen([sys.executable, "-m", "mocap.cli", "batch", str(m), "--workers", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            start_new_session=True)
    out = root / "out"
    deadline = time.monotonic() + 120
    while not list(out.glob("*.fbx")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    stdout, stderr = proc.communicate(timeout=120)
    done = sorted(p.stem for p in out.glob("*.fbx"))
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "(interrupted)" in stdout
    assert 1 <= len(done) < 4
    rows = summary_rows(stdout)
    assert sorted(k for k, v in rows.items() if v[1] == "ok") == done
    assert all(v[1] == "cancelled" for k, v in rows.items() if k not in done)
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no half-written file
    r = ok(understudy("batch", m, "-q"))  # the re-run does the rest
    assert f"{4 - len(done)} ok, {len(done)} skipped" in r.stdout


def test_batch_and_fbx_modules_import_without_blender_dask_or_tqdm():
    code = ("import sys, retarget.batch, retarget.fbx; "
            "print(sorted(m for m in ('bpy', 'dask', 'distributed', 'tqdm', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_a_take_with_a_solved_face_animates_the_characters_shape_keys(tmp_path):
    """A take folder with motion.npz and face.npz: the batch's GLB carries the face as
    morph-target weights, sampled at the body's keyframe times (issue 6 in batch)."""
    from mocap.face import ARKIT_SHAPES, FaceTrack, save_face
    from mocap.motion_io import save_motion
    from retarget.character import generate_character, save_character

    take = tmp_path / "talk"
    take.mkdir()
    walk = load_bvh(shared_file("mocap/cmu_131_01_walk.bvh")).resample(30.0).slice(0, FRAMES)
    save_motion(walk, take / "motion.npz")
    T = FRAMES
    ts = walk.timestamps.copy()
    curves = np.zeros((T, 52))
    jaw = ARKIT_SHAPES.index("jawOpen")
    curves[:, jaw] = np.linspace(0.0, 1.0, T)  # the mouth opens over the take
    save_face(FaceTrack(curves=curves, head_rotation=np.tile([1.0, 0, 0, 0], (T, 1)),
                        head_position=np.zeros((T, 3)), eye_angles=np.zeros((T, 4)), timestamps=ts,
                        present=np.ones(T, bool), fps=30.0), take / "face.npz")
    save_character(generate_character(preset="chen"), tmp_path / "chen.glb")
    m = tmp_path / "talk.toml"
    m.write_text('schema = "understudy.batch"\nschema_version = 1\noutput_dir = "out"\n'
                 '[[take]]\npath = "talk"\n[[character]]\npath = "chen.glb"\n'
                 '[settings]\nformats = ["glb"]\n')
    r = ok(understudy("batch", m, "--workers", "1"))
    assert "1 jobs: 1 ok" in r.stdout or "1 job: 1 ok" in r.stdout, r.stdout
    out = tmp_path / "out" / "talk__chen.glb"
    validate_glb(out)
    doc = load_gltf(out)
    anim = doc.animations[-1]
    weights = [c for c in anim.channels if c.path == "weights"]
    assert len(weights) == 1
    node = doc.nodes[weights[0].node]
    names = doc.meshes[node.mesh].target_names
    w = anim.samplers[weights[0].sampler].output.reshape(T, len(names))
    k = names.index("jawOpen")
    assert w[0, k] == pytest.approx(0.0, abs=1e-6) and w[-1, k] == pytest.approx(1.0, abs=1e-6)
    assert np.all(np.diff(w[:, k]) > 0)  # the ramp, frame by frame
    others = [i for i, n in enumerate(names) if n != "jawOpen"]
    assert np.abs(w[:, others]).max() < 1e-6
