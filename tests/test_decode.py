"""The output-decoding table: every entry validates, names its outputs and decodes to proper rotations."""
import numpy as np
import pytest

from edgepose.decode import DECODINGS, check_decoding, decode_outputs, output_names
from edgepose.errors import ModelFormatError

rng = np.random.default_rng(5)
N = 4
BINS = {"width": 3.0, "offset": -99.0}
EXAMPLES = {  # a valid output section and raw outputs for each decoding (a new decoding must add one)
    "rot6d": ({"type": "rot6d", "name": "pose"}, {"pose": rng.normal(size=(N, 6))}),
    "euler_degrees": ({"type": "euler_degrees", "name": "out", "order": ["pitch", "yaw", "roll"]},
                      {"out": rng.uniform(-60, 60, (N, 3))}),
    "sincos": ({"type": "sincos", "name": "sc"}, {"sc": np.concatenate([np.sin([[0.1, 0.2, 0.3]] * N),
                                                                          np.cos([[0.1, 0.2, 0.3]] * N)], 1)}),
    "bins": ({"type": "bins", **{a: {"name": a, **BINS} for a in ("yaw", "pitch", "roll")}},
             {a: rng.normal(size=(N, 66)) for a in ("yaw", "pitch", "roll")}),
    "bins_packed": ({"type": "bins_packed", "name": "b", "bins": 66, **BINS}, {"b": rng.normal(size=(N, 198))}),
    "affine_camera": ({"type": "affine_camera", "name": "params"},
                      {"params": np.concatenate([np.eye(3, 4).reshape(1, 12).repeat(N, 0) * 1e-3,
                                                 rng.normal(size=(N, 50))], 1)}),
}


def test_every_decoding_has_an_example_here():
    assert set(EXAMPLES) == set(DECODINGS)


@pytest.mark.parametrize("kind", sorted(DECODINGS))
def test_each_decoding_validates_names_its_outputs_and_gives_rotations(kind):
    section, outputs = EXAMPLES[kind]
    check_decoding(section)
    assert sorted(output_names(section)) == sorted(outputs)
    angles, matrices = decode_outputs(outputs, section)
    assert angles.shape == (N, 3) and matrices.shape == (N, 3, 3)
    assert np.allclose(matrices @ np.transpose(matrices, (0, 2, 1)), np.eye(3), atol=1e-9)
    assert DECODINGS[kind].form


@pytest.mark.parametrize("kind", sorted(DECODINGS))
def test_each_decoding_refuses_an_unknown_key(kind):
    section, _ = EXAMPLES[kind]
    with pytest.raises(ModelFormatError, match="unknown key 'manifest.output.nmae'"):
        check_decoding({**section, "nmae": "x"})


def test_an_unknown_decoding_names_the_valid_ones():
    with pytest.raises(ModelFormatError, match="affine_camera"):
        decode_outputs({}, {"type": "quaternion"})


@pytest.mark.parametrize("kind", sorted(DECODINGS))
def test_each_decoding_refuses_outputs_that_do_not_have_one_row_per_face(kind):
    section, outputs = EXAMPLES[kind]
    decode_outputs(outputs, section, faces=N)
    with pytest.raises(ModelFormatError, match=f"for a batch of {N + 1} face"):  # a face would be dropped silently
        decode_outputs(outputs, section, faces=N + 1)


@pytest.mark.parametrize("kind", ["rot6d", "euler_degrees", "sincos", "bins_packed"])
def test_a_decoding_refuses_an_output_of_the_wrong_width(kind):
    section, outputs = EXAMPLES[kind]
    name = output_names(section)[0]
    wide = {name: np.concatenate([outputs[name], outputs[name]], 1)}  # e.g. 12 values read as two faces of 6
    with pytest.raises(ModelFormatError, match="values per face"):
        decode_outputs(wide, section, faces=N)


@pytest.mark.parametrize("kind, bad, words", [
    ("rot6d", {"pose": np.zeros((N, 6))}, "zero or parallel"),
    ("rot6d", {"pose": np.tile([1.0, 0, 0, 2.0, 0, 0], (N, 1))}, "zero or parallel"),
    ("sincos", {"sc": np.zeros((N, 6))}, "sine and cosine that are both zero"),
    ("euler_degrees", {"out": np.full((N, 3), 5000.0)}, "not an angle in degrees"),
    ("affine_camera", {"params": np.zeros((N, 62))}, "zero or parallel"),
    ("affine_camera", {"params": np.full((N, 62), np.nan)}, "non-finite"),
    ("bins_packed", {"b": np.full((N, 198), np.inf)}, "non-finite"),
])
def test_outputs_that_are_no_rotation_are_refused_not_decoded_to_zero(kind, bad, words):
    section, _ = EXAMPLES[kind]
    with pytest.raises(ModelFormatError, match=words):
        decode_outputs(bad, section, faces=N)
