"""``nrdfer faces`` on a real photo and on a small video."""

from __future__ import annotations

import json

import cv2
import numpy as np

from nrdfer.cli import main
from tests.conftest import ROOT

from .conftest import ASTRONAUT_LANDMARKS, moving_face_frames, write_video


def test_faces_on_image_json_and_aligned(tmp_path, astronaut, capsys):
    image = tmp_path / "astronaut.png"
    cv2.imwrite(str(image), cv2.cvtColor(astronaut, cv2.COLOR_RGB2BGR))
    out = tmp_path / "aligned.png"
    params = str(ROOT / "params.yaml")
    rc = main(["faces", str(image), "--json", "--out", str(out), "--params", params, "-S",
               "detect_align.output_size=112"])  # fmt: skip
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    faces = result["frames"][0]["faces"]
    assert len(faces) == 1 and faces[0]["score"] > 0.9
    assert np.abs(np.array(faces[0]["landmarks"]) - ASTRONAUT_LANDMARKS).max() < 5
    crop = cv2.imread(str(out))
    assert crop.shape == (112, 112, 3)


def test_faces_on_video_and_errors(tmp_path, face_patch, capsys):
    video = write_video(tmp_path / "clip.avi", moving_face_frames(face_patch, 3))
    out = tmp_path / "strip.png"
    params = str(ROOT / "params.yaml")
    rc = main(
        [
            "faces",
            str(video),
            "--out",
            str(out),
            "--params",
            params,
            "-S",
            "detect_align.output_size=56",
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert text.count("frame ") == 3 and "score" in text
    assert cv2.imread(str(out)).shape == (56, 3 * 56, 3)
    assert main(["faces", str(tmp_path / "missing.avi"), "--params", params]) == 2
    assert "missing.avi" in capsys.readouterr().err
