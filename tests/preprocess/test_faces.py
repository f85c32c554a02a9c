"""Face detection and alignment on a real photo (skimage's astronaut) and the ResNet-50 backend."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nrdfer.errors import UserError
from nrdfer.preprocess.align import align_face, similarity_transform, template, transform_points
from nrdfer.preprocess.faces import TinyRetinaFace, nms, prior_boxes
from nrdfer.preprocess.retinaface_r50 import RetinaFaceR50Net, RetinaFaceResNet50, load_resnet50
from nrdfer.preprocess.tools import build_detector
from tests.conftest import ROOT

from .conftest import ASTRONAUT_LANDMARKS


@pytest.fixture(scope="module")
def tiny():
    return TinyRetinaFace(score_threshold=0.9, nms_threshold=0.4)


def test_astronaut_one_face_with_landmarks(tiny, astronaut):
    faces = tiny.detect(astronaut)[0]
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.9
    err = np.linalg.norm(face.landmarks_array() - ASTRONAUT_LANDMARKS, axis=1)
    assert (err < 5).all(), err
    x1, y1, x2, y2 = face.box
    assert x1 < 202 and x2 > 247 and y1 < 100 and y2 > 140


def test_astronaut_found_at_15_percent_brightness(tiny, astronaut):
    dark = (astronaut.astype(np.float32) * 0.15).astype(np.uint8)
    faces = tiny.detect(dark)[0]
    assert len(faces) >= 1 and faces[0].score > 0.9
    err = np.linalg.norm(faces[0].landmarks_array() - ASTRONAUT_LANDMARKS, axis=1)
    assert (err < 5).all(), err


def test_batched_equals_single_and_max_side_rescales(astronaut):
    batch = np.stack([astronaut, astronaut[:, ::-1].copy()])
    det = TinyRetinaFace(batch_size=2)
    both = det.detect(batch)
    single = det.detect(batch[1])
    np.testing.assert_allclose(
        both[1][0].landmarks_array(), single[0][0].landmarks_array(), atol=1e-3
    )
    small = TinyRetinaFace(max_side=256).detect(astronaut)[0]  # detected at half size
    err = np.linalg.norm(small[0].landmarks_array() - ASTRONAUT_LANDMARKS, axis=1)
    assert (err < 10).all(), err  # 5 px at the half resolution it was detected at


def test_aligned_eyes_land_on_template(tiny, astronaut):
    face = tiny.detect(astronaut)[0][0]
    for size in (112, 224):
        matrix = similarity_transform(face.landmarks_array(), size)
        mapped = transform_points(face.landmarks_array(), matrix)
        eyes_err = np.linalg.norm(mapped[:2] - template(size)[:2], axis=1) * 112 / size
        assert (eyes_err < 2).all(), eyes_err
    crop = align_face(astronaut, face.landmarks_array(), 112)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    # the crop is the face: re-detected inside it (padded so the face is not at the border)
    pad = np.zeros((224, 224, 3), np.uint8)
    pad[56:168, 56:168] = crop
    again = tiny.detect(pad)[0]
    assert (
        again
        and np.linalg.norm(again[0].landmarks_array()[:2] - 56 - template(112)[:2], axis=1).max()
        < 6
    )


def test_prior_boxes_and_nms():
    priors = prior_boxes(64, 96)
    assert priors.shape == (8 * 12 * 2 + 4 * 6 * 2 + 2 * 3 * 2, 4)
    np.testing.assert_allclose(priors[0], [4 / 96, 4 / 64, 16 / 96, 16 / 64])
    np.testing.assert_allclose(priors[1], [4 / 96, 4 / 64, 32 / 96, 32 / 64])
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.4).tolist() == [0, 2]


def _official_checkpoint(model: torch.nn.Module, path):
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save(state, path)


@pytest.mark.slow
def test_resnet50_loads_official_format_strictly(tmp_path, one_thread):
    torch.manual_seed(0)
    net = RetinaFaceR50Net()
    keys = net.state_dict().keys()
    for key in (
        "body.layer1.0.downsample.0.weight",
        "fpn.merge2.0.weight",
        "ssh3.conv7x7_3.1.running_var",
        "LandmarkHead.2.conv1x1.bias",
    ):
        assert key in keys
    path = tmp_path / "Resnet50_Final.pth"
    _official_checkpoint(net, path)
    det = RetinaFaceResNet50(path, score_threshold=0.5)
    loaded = det.net
    for k, v in net.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    del net
    with torch.inference_mode():
        loc, conf, landms = loaded(torch.rand(1, 3, 64, 96))
    anchors = prior_boxes(64, 96).shape[0]
    assert loc.shape == (1, anchors, 4) and conf.shape == (1, anchors, 2)
    assert landms.shape == (1, anchors, 10)
    torch.testing.assert_close(conf.sum(-1), torch.ones(1, anchors))
    # the detector API around it runs end to end (random weights: any number of faces)
    out = det.detect(np.zeros((1, 64, 96, 3), np.uint8))
    assert len(out) == 1


def test_resnet50_strict_key_check(tmp_path):
    net = RetinaFaceR50Net()
    state = {f"module.{k}": v for k, v in net.state_dict().items() if "ssh2" not in k}
    state["module.extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(UserError, match="missing keys"):
        load_resnet50(tmp_path / "bad.pth")


def detect_align_params(**changes):
    import dataclasses

    from nrdfer.params import load_section

    return dataclasses.replace(load_section(ROOT / "params.yaml", "detect_align"), **changes)


def test_resnet50_missing_file_says_where_to_put_it(tmp_path):
    for weights in ("", str(tmp_path / "nope.pth")):
        with pytest.raises(UserError, match="detect_align.resnet50_weights"):
            build_detector(detect_align_params(backend="resnet50", resnet50_weights=weights))
