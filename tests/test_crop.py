"""The runtime's fast square crop (one warp) against the training protocol (crop + copyMakeBorder + resize)."""
import cv2
import numpy as np
import pytest

from edgepose.crop import square_crop, square_geometry, square_warp
from edgepose.manifest import InputSpec
from edgepose.preprocess import to_input


@pytest.fixture(scope="module")
def frame(dev_samples):
    img = cv2.imread(str(dev_samples[3].image))
    return cv2.resize(img, (640, 480), interpolation=cv2.INTER_LINEAR)


# side from 0.5x to 8x the output (upscale, mild and 2^n downscale), inside the frame and past each edge
BOXES = [(300, 220, 340, 260), (250, 150, 330, 230), (200, 100, 420, 330), (60, 20, 600, 470),
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
    assert diff.mean() < (0.5 if inside else 2.0) and np.percentile(diff, 99) <= (4 if inside else 32)


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
