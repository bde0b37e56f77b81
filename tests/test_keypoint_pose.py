"""Keypoint + fit routes: exact recovery on synthetic geometry, and Face Mesh on real dev faces."""
import cv2
import numpy as np
import pytest

from edgepose.angles import euler_to_matrix
from edgepose.keypoint_pose import (GL_FROM_CV, FaceMeshPose, angles_from_camera_rotation, five_point_pnp,
                                    load_canonical_face, similarity_fit)

from .conftest import SHARED

OBJ = SHARED / "models" / "mesh" / "mediapipe_canonical_face" / "canonical_face_model.obj"
MESH = SHARED / "models" / "detectors" / "face_landmark.tflite"


def camera_rotation(yaw, pitch, roll):
    """Model -> OpenCV camera rotation of a face with these edgepose angles (inverse of the documented convention)."""
    return GL_FROM_CV @ euler_to_matrix(yaw, pitch, roll).T


@pytest.fixture(scope="module")
def canonical():
    if not OBJ.is_file():
        pytest.skip(f"{OBJ} is absent")
    return load_canonical_face(OBJ)


def test_similarity_fit_recovers_a_known_transform(canonical):
    rot = camera_rotation(35.0, -12.0, 8.0)
    points = 3.7 * canonical @ rot.T + np.array([100.0, 50.0, 400.0])
    scale, r, t = similarity_fit(canonical, points)
    assert scale == pytest.approx(3.7) and np.allclose(r, rot) and np.allclose(t, [100, 50, 400])
    np.testing.assert_allclose(angles_from_camera_rotation(r), [35.0, -12.0, 8.0], atol=1e-9)


@pytest.mark.parametrize("use_mesh", [False, True])
def test_five_point_pnp_recovers_a_projected_pose(use_mesh, canonical):
    from edgepose.keypoint_pose import ANTHROPOMETRIC_5, FIVE_POINT_VERTICES

    model = np.array([canonical[list(ix)].mean(0) for ix in FIVE_POINT_VERTICES]) if use_mesh else ANTHROPOMETRIC_5
    rot = camera_rotation(20.0, 10.0, -5.0)
    camera = np.array([[640.0, 0, 320], [0, 640, 240], [0, 0, 1]])
    rvec = cv2.Rodrigues(rot)[0]
    pts = cv2.projectPoints(model, rvec, np.array([0.0, 0, 600 if not use_mesh else 60]), camera, None)[0].reshape(-1, 2)
    est = five_point_pnp(pts, (480, 640), canonical if use_mesh else None)
    assert np.allclose([est.yaw, est.pitch, est.roll], [20.0, 10.0, -5.0], atol=1.0)


def test_face_mesh_route_on_dev_faces(canonical, dev_samples):
    if not MESH.is_file():
        pytest.skip(f"{MESH} is absent")
    mesh = FaceMeshPose(str(MESH), str(OBJ))
    frontal = [s for s in dev_samples if max(abs(s.yaw), abs(s.pitch), abs(s.roll)) < 25][:10]
    errors = []
    for s in frontal:
        est = mesh.estimate(cv2.imread(str(s.image)), s.box)
        if est is not None:
            errors.append(np.abs([est.yaw - s.yaw, est.pitch - s.pitch, est.roll - s.roll]).mean())
    assert len(errors) >= 9 and np.mean(errors) < 5.0
    assert mesh.estimate(np.zeros((200, 200, 3), np.uint8), (50, 50, 150, 150)) is None


def test_missing_files_are_clear_errors(tmp_path):
    from edgepose.errors import ConfigError

    with pytest.raises(ConfigError, match="canonical_face_model.obj"):
        load_canonical_face(tmp_path / "none.obj")


def test_eval_prints_the_face_mesh_route_beside_the_model(dev_root, tmp_path):
    import json
    import subprocess
    import sys

    need_files = [SHARED / "models" / "detectors" / "blazeface_short_range.tflite", MESH, OBJ]
    if not all(p.is_file() for p in need_files):
        pytest.skip("the Face Mesh route's files are absent from ../shared/models")
    out = tmp_path / "eval.json"
    r = subprocess.run([sys.executable, "-m", "edgepose", "eval", "--root", str(dev_root), "--limit", "12",
                        "--compare-facemesh", str(SHARED / "models"), "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = [line for line in r.stdout.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| this model | 12 |") and "Face Mesh + canonical fit (" in rows[2]
    compare = json.loads(out.read_text())["compare"]
    route = next(v for k, v in compare.items() if k.startswith("Face Mesh"))
    assert route["images"] == 12 and route["n"] + route["missed"] == 12 and 0 < route["mean"] < 15
    same = compare["this model, the faces Face Mesh found"]
    assert same["n"] == route["n"]


def test_face_mesh_route_names_the_missing_file(tmp_path):
    from edgepose.errors import ConfigError
    from edgepose.keypoint_pose import FaceMeshRoute

    (tmp_path / "face_landmark.tflite").write_bytes(b"")
    with pytest.raises(ConfigError, match="no blazeface_short_range.tflite under"):
        FaceMeshRoute(tmp_path)
