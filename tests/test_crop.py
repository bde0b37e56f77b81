"""Crop protocols: the runtime's fast square crop (one warp) against the training protocol (crop + copyMakeBorder +
resize), and the 3DDFA-style zero-padded ROI square, checked on synthetic frames."""
import cv2
import numpy as np
import pytest

from edgepose.crop import roi_crop, square_crop, square_geometry, square_warp
from edgepose.manifest import CropSpec, InputSpec
from edgepose.preprocess import crop_face, to_input


@pytest.fixture(scope="module")
def frame(dev_samples):
    img = cv2.imread(str(dev_samples[3].image))
    return cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)


# side from 0.5x to 8x the output (upscale, mild and 2^n downscale, an odd side of 273 px that cannot halve evenly),
# inside the frame and past each edge
BOXES = [(300, 220, 340, 260), (250, 150, 330, 230), (200, 100, 420, 330), (250, 120, 400, 290.5), (60, 20, 600, 470),
         (-40, -30, 120, 140), (560, 380, 700, 520), (0, 200, 60, 260), (300, 0, 400, 60)]


@pytest.mark.parametrize("box", BOXES)
def test_warp_matches_the_training_crop(frame, box):
    ref = square_crop(frame, box, 1.6, 128).astype(np.int16)
    got = square_warp(frame, box, 1.6, 128)
    assert got.shape == (128, 128, 3) and got.dtype == np.uint8
    diff = np.abs(ref - got)
    side, left, top = square_geometry(box, 1.6)
    inside = left >= 0 and top >= 0 and left + side <= frame.shape[1] and top + side <= frame.shape[0]
    # past the frame, the replicated border streaks come from 2x2 means instead of the edge pixels themselves
    # (a crop that drops the odd side's last pixel before halving is 1.7 grey levels off on the 273 px square)
    assert diff.mean() < (0.6 if inside else 2.0) and np.percentile(diff, 99) <= (5 if inside else 32)


def test_warp_upscale_inside_the_frame_is_the_resize(frame):
    box = (300, 220, 340, 260)
    side, left, top = square_geometry(box, 1.6)
    assert side < 128 and left > 0 and top > 0
    ref = cv2.resize(frame[top:top + side, left:left + side], (128, 128), interpolation=cv2.INTER_LINEAR)
    diff = np.abs(ref.astype(np.int16) - square_warp(frame, box, 1.6, 128))[2:-2, 2:-2]  # edges read past the square
    assert diff.max() <= 1


@pytest.mark.parametrize("layout, color", [("NCHW", "RGB"), ("NHWC", "BGR"), ("NHWC", "RGB")])
def test_to_input_is_the_normalisation_formula(layout, color):
    crops = np.random.default_rng(0).integers(0, 256, (3, 16, 20, 3), dtype=np.uint8)
    spec = InputSpec(name="x", size=(16, 20), layout=layout, color=color, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 8.0))
    x = crops[..., ::-1] if color == "RGB" else crops
    want = (x.astype(np.float32) - np.array(spec.mean, np.float32)) / np.array(spec.std, np.float32)
    want = want.transpose(0, 3, 1, 2) if layout == "NCHW" else want
    got = to_input(crops, spec)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def _grid(h=200, w=300):
    """A frame whose pixel values encode their own coordinates (so a crop says where it came from)."""
    y, x = np.mgrid[0:h, 0:w]
    return np.dstack([x % 256, y % 256, np.full_like(x, 200)]).astype(np.uint8)


def test_roi_crop_is_a_square_of_the_mean_side_shifted_down():
    frame = _grid()
    box = (100.0, 50.0, 160.0, 130.0)  # w 60, h 80 -> mean side 70, side int(1.6 * 70) = 112
    out = roi_crop(frame, box, 1.6, (0.0, 0.2), (112, 112))  # same size: the resize is the identity
    left, top = 130 - 56, 90 + 14 - 56  # centre (130, 90) moved down by 0.2 * 70
    assert out[0, 0, 0] == left and out[0, 0, 1] == top
    assert out[-1, -1, 0] == left + 111 and out[-1, -1, 1] == top + 111


def test_roi_crop_pads_with_zeros_outside_the_frame():
    frame = np.full((100, 100, 3), 255, np.uint8)
    out = roi_crop(frame, (0.0, 0.0, 40.0, 40.0), 2.0, (0.0, 0.0), (80, 80))  # square from -20 to 60
    assert (out[:20, :20] == 0).all() and (out[30:, 30:] == 255).all()


def test_crop_face_dispatches_the_roi_protocol_at_the_input_size():
    frame = _grid()
    crop = CropSpec(protocol="roi", scale=1.58, shift=(0.0, 0.14))
    out = crop_face(frame, (100, 50, 160, 130), crop, InputSpec(size=(120, 120)))
    assert out.shape == (120, 120, 3)
    assert np.array_equal(out, roi_crop(frame, (100, 50, 160, 130), 1.58, (0.0, 0.14), (120, 120)))


@pytest.mark.parametrize("protocol", ["roi", "square", "expand"])
def test_every_crop_protocol_gives_the_input_size(protocol):
    crop = CropSpec(protocol=protocol, margins=(0.2, 0.2, 0.2, 0.2))
    out = crop_face(_grid(), (10, 10, 290, 190), crop, InputSpec(size=(64, 96)))
    assert out.shape == (64, 96, 3)


def test_eye_levelling_is_refused_for_crops_it_cannot_rotate():
    from edgepose.errors import ConfigError

    with pytest.raises(ConfigError, match="square or roi crop protocol"):
        crop_face(_grid(), (10, 10, 100, 100), CropSpec(protocol="expand"), InputSpec(size=(64, 64)), level_angle=12.0)


def test_levelled_roi_crop_is_the_roi_crop_turned_with_the_face():
    """At 0 degrees the levelled roi crop is the roi crop; turning the frame by an angle about the box centre and
    levelling by that angle gives back (nearly) the unturned crop, the crop's downward shift turned with the face."""
    import cv2

    from edgepose.crop import roi_crop

    frame = cv2.GaussianBlur(_grid(), (0, 0), 2)
    box, spec = (60.0, 50.0, 140.0, 150.0), InputSpec(size=(64, 64))
    crop = CropSpec(protocol="roi", scale=1.58, shift=(0.0, 0.14))
    plain = roi_crop(frame, box, 1.58, (0.0, 0.14), (64, 64)).astype(int)
    assert np.abs(crop_face(frame, box, crop, spec, level_angle=1e-9).astype(int) - plain).mean() < 3
    turn = cv2.getRotationMatrix2D((99.5, 99.5), -20.0, 1.0)  # the face turned 20 degrees clockwise as displayed
    turned = cv2.warpAffine(frame, turn, frame.shape[1::-1])
    levelled = crop_face(turned, box, crop, spec, level_angle=20.0).astype(int)
    unlevelled = crop_face(turned, box, crop, spec).astype(int)
    inner = slice(12, 52)
    assert np.abs(levelled - plain)[inner, inner].mean() < np.abs(unlevelled - plain)[inner, inner].mean() / 2


def test_a_runtime_refuses_eye_levelling_for_a_crop_it_cannot_rotate_when_built():
    from pathlib import Path

    from edgepose import Runtime
    from edgepose.errors import ConfigError

    from .conftest import SHARED, need

    peers = Path(__file__).resolve().parent.parent / "benchmarks" / "peers"
    with pytest.raises(ConfigError, match="square or roi crop protocol"):
        Runtime("cpu", model=str(peers / "fsanet.json"), models_dir=str(need(SHARED / "models" / "peers")), align=True)
