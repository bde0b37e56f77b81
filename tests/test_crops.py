"""Crop protocols a manifest can name: the 3DDFA-style zero-padded ROI square, checked on synthetic frames."""
import numpy as np
import pytest

from edgepose.crop import roi_crop
from edgepose.manifest import CropSpec, InputSpec
from edgepose.preprocess import crop_face


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

    with pytest.raises(ConfigError, match="square crop protocol"):
        crop_face(_grid(), (10, 10, 100, 100), CropSpec(protocol="roi"), InputSpec(size=(64, 64)), level_angle=12.0)
