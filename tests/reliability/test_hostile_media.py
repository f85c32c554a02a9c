"""Hostile media and model files (docs/reliability.md, "Hostile media and model files"):
same-stem videos, rotated phone videos, damaged or oversized model files, bad ``--window``
values, interrupted and piped ``nrdfer predict``, and the long-video helpers that keep memory
flat. Each case gives the right answer or exit 2 with one ``error:`` line."""

from __future__ import annotations

import csv
import json
import shlex
from pathlib import Path

import cv2
import numpy as np
import pytest

from nrdfer.cli import main
from nrdfer.data.frames import orientation_of_matrix
from nrdfer.params import load_params
from nrdfer.preprocess.pipeline import clip_conflicts, detect_align_tree
from nrdfer.preprocess.video import VideoStream
from tests.conftest import ROOT
from tests.predict.conftest import face_frames, write_model_file
from tests.preprocess.conftest import FACE_BOX, moving_face_frames, write_shown_as, write_video

from .tiny import write_tiny_params


def rows_of(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def face_patch() -> np.ndarray:
    import skimage.data

    x1, y1, x2, y2 = FACE_BOX
    return cv2.resize(skimage.data.astronaut()[y1:y2, x1:x2], (85, 100))


@pytest.fixture
def detect_params(tmp_path):
    path = write_tiny_params(tmp_path / "params.yaml")
    return load_params(path, ["detect_align"])["detect_align"]


# ------------------------------------------------------------------------------------------
# one clip folder per input
# ------------------------------------------------------------------------------------------


def test_clip_conflicts_names_same_stems_and_nested_clips():
    rels = ["V/Happy/clip1.avi", "V/Happy/clip1.mp4", "V/Happy/clip2.avi", "V/Sad/clip1.avi",
            "a/b.avi", "a/b/c.avi", "a/bc.avi"]  # fmt: skip
    out = clip_conflicts(rels)
    assert set(out) == {"V/Happy/clip1", "a/b", "a/b/c"}
    assert out["V/Happy/clip1"]["status"] == "duplicate_id"
    assert "clip1.avi, clip1.mp4" in out["V/Happy/clip1"]["reason"]
    assert out["a/b"]["status"] == out["a/b/c"]["status"] == "nested_clip"
    assert "c.avi" in out["a/b"]["reason"] and "b.avi" in out["a/b/c"]["reason"]
    assert clip_conflicts(["x/1.avi", "x/2.mp4", "y/1.avi"]) == {}


def test_same_stem_videos_are_both_left_out_and_listed_once(
    tmp_path, detect_params, face_patch, capsys
):
    """``clip1.avi`` and ``clip1.mp4`` in one folder: both refused (``duplicate_id``, as raw
    AFEW ingest does), one report row, nothing written under ``clip1``; a re-run redoes no
    work; an earlier run's folder for one of them is removed."""
    videos, out, report = tmp_path / "AFEW", tmp_path / "faces", tmp_path / "report.csv"
    frames = moving_face_frames(face_patch, 3)
    write_video(videos / "Val_AFEW/Happy/clip1.avi", frames)
    write_video(videos / "Val_AFEW/Happy/clip2.avi", frames)
    # a run before the second copy existed
    detect_align_tree(videos, out, report, detect_params)
    assert (out / "Val_AFEW/Happy/clip1/00001.jpg").is_file()
    (videos / "Val_AFEW/Happy/clip1.mp4").write_bytes(
        (videos / "Val_AFEW/Happy/clip1.avi").read_bytes()
    )
    summary = detect_align_tree(videos, out, report, detect_params)
    assert summary.by_status == {"duplicate_id": 2} and summary.refused == 2
    assert (summary.total, summary.processed, summary.skipped) == (3, 0, 1)
    rows = rows_of(report)
    assert [r["clip"] for r in rows] == ["Val_AFEW/Happy/clip1", "Val_AFEW/Happy/clip2"]
    dup = rows[0]
    assert dup["status"] == "duplicate_id"
    assert "clip1.avi, clip1.mp4" in dup["reason"] and "rename or remove" in dup["reason"]
    assert not (out / "Val_AFEW/Happy/clip1").exists()
    assert "left out Val_AFEW/Happy/clip1" in capsys.readouterr().err
    before = report.read_bytes()
    state = out / ".state/Val_AFEW/Happy/clip1.json"
    mtime = state.stat().st_mtime_ns
    again = detect_align_tree(videos, out, report, detect_params)
    assert (again.processed, again.skipped) == (0, 1)
    assert report.read_bytes() == before and state.stat().st_mtime_ns == mtime
    # one copy removed: the other is processed on the next run
    (videos / "Val_AFEW/Happy/clip1.mp4").unlink()
    assert detect_align_tree(videos, out, report, detect_params).processed == 1
    assert (out / "Val_AFEW/Happy/clip1/00001.jpg").is_file()
    assert [r["status"] for r in rows_of(report)] == ["ok", "ok"]


def test_a_clip_folder_inside_another_clip_folder_is_refused(tmp_path, detect_params, face_patch):
    """``a/b.avi`` next to ``a/b/c.avi``: writing ``a/b`` would replace the folder holding
    ``a/b/c``; both are left out (``nested_clip``)."""
    videos, out, report = tmp_path / "v", tmp_path / "faces", tmp_path / "report.csv"
    frames = moving_face_frames(face_patch, 3)
    write_video(videos / "a/b.avi", frames)
    write_video(videos / "a/b/c.avi", frames)
    summary = detect_align_tree(videos, out, report, detect_params)
    assert summary.by_status == {"nested_clip": 2}
    assert {r["clip"]: r["status"] for r in rows_of(report)} == {
        "a/b": "nested_clip", "a/b/c": "nested_clip"
    }  # fmt: skip
    assert not list(out.rglob("*.jpg"))


# ------------------------------------------------------------------------------------------
# display rotation (phone videos)
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees", [0, 90, 180, 270, -90])
@pytest.mark.parametrize("hflip", [False, True])
def test_every_display_orientation_is_applied(tmp_path, degrees, hflip):
    """The frames come out as shown for the eight orientations a display matrix can state
    (PyAV reads ``frame.rotation`` back; the stored frames are landscape, shown portrait)."""
    shown = np.random.default_rng(0).integers(0, 256, (3, 40, 24, 3), dtype=np.uint8)
    path = write_shown_as(tmp_path / "v.mkv", shown, degrees, hflip)
    got = np.stack([f.rgb for f in VideoStream(path).frames()])
    assert np.array_equal(got, shown)


def test_orientation_of_matrix_rounds_to_quarter_turns():
    c, s = np.cos(np.radians(80)), np.sin(np.radians(80))
    assert orientation_of_matrix([c, -s, 0, s, c, 0, 0, 0, 1]) == (1, False)
    assert orientation_of_matrix([0, 0, 0, 0, 0, 0, 0, 0, 1]) == (0, False)  # degenerate
    assert orientation_of_matrix([-1, 0, 0, 0, 1, 0, 0, 0, 1]) == (0, True)


def test_portrait_videos_give_the_upright_results_everywhere(
    tmp_path, face_patch, detect_params, model_file, capsys
):
    """A face video stored turned (display rotation 90, 180 or 270 degrees) gives, in
    detect_align, ``nrdfer faces`` and ``nrdfer predict``, what its upright copy gives."""
    upright = moving_face_frames(face_patch, 4)  # (4, 160, 192, 3)
    tree = tmp_path / "AFEW"
    for degrees in (0, 90, 180, 270):
        write_shown_as(tree / f"Val_AFEW/R{degrees}/clip.mkv", upright, degrees)
    out = tmp_path / "faces"
    summary = detect_align_tree(tree, out, tmp_path / "report.csv", detect_params)
    assert summary.by_status == {"ok": 4}
    crops = {d: sorted((out / f"Val_AFEW/R{d}/clip").iterdir()) for d in (0, 90, 180, 270)}
    for d in (90, 180, 270):
        assert [p.read_bytes() for p in crops[d]] == [p.read_bytes() for p in crops[0]]

    def faces(video: Path) -> dict:
        argv = ["faces", str(video), "--json", "--params", str(ROOT / "params.yaml")]
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    want = faces(tree / "Val_AFEW/R0/clip.mkv")
    assert (want["width"], want["height"]) == (192, 160) and want["frames"][0]["faces"]
    got = faces(tree / "Val_AFEW/R90/clip.mkv")
    assert got["frames"] == want["frames"] and (got["width"], got["height"]) == (192, 160)

    videos = [
        write_shown_as(tmp_path / f"p{d}.mkv", face_frames(face_patch, 12), d) for d in (0, 90)
    ]
    assert main(["predict", *map(str, videos), "--checkpoint", str(model_file), "--json"]) == 0
    a, b = json.loads(capsys.readouterr().out)["results"]
    for key in ("label", "probs", "sampled_frames", "detected_frames"):
        assert a[key] == b[key]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return write_model_file(tmp_path_factory.mktemp("model") / "model.pt")


# ------------------------------------------------------------------------------------------
# damaged model files
# ------------------------------------------------------------------------------------------


def _edited(tmp_path: Path, model_file: Path, name: str, edit) -> Path:
    import torch

    state = torch.load(model_file, weights_only=True)
    edit(state)
    path = tmp_path / f"{name}.pt"
    torch.save(state, path)
    return path


def _predict_fails_with_one_line(capsys, video: Path, checkpoint: Path, *words: str) -> str:
    rc = main(["predict", str(video), "--checkpoint", str(checkpoint), "--json"])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2 and captured.out == "", err
    assert len(err.splitlines()) == 1 and err.startswith("nrdfer predict: error: "), err
    assert str(checkpoint) in err and all(w in err for w in words), err
    return err


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, face_patch) -> Path:
    return write_video(tmp_path_factory.mktemp("video") / "short.avi", face_frames(face_patch, 12))


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_model_file_with_nan_or_inf_weights_is_refused(
    tmp_path, model_file, short_video, capsys, value
):
    import torch

    from nrdfer.errors import UserError
    from nrdfer.model_file import load_model_file

    def poison(state):
        name = next(k for k, v in state["model_state"].items() if v.is_floating_point())
        state["model_state"][name].view(-1)[0] = value

    bad = _edited(tmp_path, model_file, "nan", poison)
    _predict_fails_with_one_line(capsys, short_video, bad, "NaN or Inf", "re-run training")
    with pytest.raises(UserError, match="NaN or Inf"):  # evaluate and fine-tuning read it here
        load_model_file(bad)
    assert torch.isfinite(load_model_file(model_file)["model_state"]["trunk.stem.0.weight"]).all()


def test_json_never_prints_nan(model_file, short_video, capsys, monkeypatch):
    """A model that answers NaN (finite weights, a broken forward) reports the video as an
    error; the JSON on stdout stays strict JSON."""
    from nrdfer.predict.predictor import Predictor

    real = Predictor.classify

    def nan_classify(self, clips):
        out = real(self, clips)
        out["probs"] = out["probs"] * np.nan
        return out

    monkeypatch.setattr(Predictor, "classify", nan_classify)
    rc = main(["predict", str(short_video), "--checkpoint", str(model_file), "--json"])
    captured = capsys.readouterr()

    def refuse(token):
        raise AssertionError(f"{token} in the JSON")

    payload = json.loads(captured.out, parse_constant=refuse)
    assert rc == 2 and payload["results"] == []
    assert "NaN or Inf" in payload["errors"][0]["error"] and str(model_file) in captured.err


def _drop(key):
    return lambda s: s.pop(key)


def _set(path, value):
    def edit(state):
        *parents, last = path
        node = state
        for p in parents:
            node = node[p]
        node[last] = value

    return edit


@pytest.mark.parametrize(
    ("name", "edit", "words"),
    [
        ("no-classes", _drop("classes"), ["'classes'"]),
        ("no-state", _drop("model_state"), ["'model_state'"]),
        ("no-params", _drop("model_params"), ["'model_params'"]),
        ("classes-str", _set(["classes"], "Happy"), ["'classes'"]),
        ("classes-empty", _set(["classes"], []), ["'classes'"]),
        ("classes-ints", _set(["classes"], list(range(7))), ["'classes'"]),
        ("state-list", _set(["model_state"], [1, 2]), ["'model_state'"]),
        (
            "state-not-tensor",
            _set(["model_state", "trunk.stem.0.weight"], 3),
            ["trunk.stem.0.weight"],
        ),
        ("U-negative", _set(["preprocess", "U"], -1), ["preprocess.U = '-1'"]),
        ("U-text", _set(["preprocess", "U"], "eight"), ["preprocess.U = 'eight'"]),
        ("U-float", _set(["preprocess", "U"], 4.5), ["preprocess.U"]),
        ("size-zero", _set(["preprocess", "size"], 0), ["preprocess.size"]),
        ("detect-list", _set(["preprocess", "detect_align"], [1, 2]), ["preprocess.detect_align"]),
        ("detect-text", _set(["preprocess", "detect_align"], "tiny"), ["preprocess.detect_align"]),
        ("detect-none", _set(["preprocess", "detect_align"], None), ["preprocess.detect_align"]),
        ("enhance-int", _set(["preprocess", "enhance"], 3), ["preprocess.enhance"]),
        ("preprocess-list", _set(["preprocess"], [1]), ["'preprocess'"]),
        ("params-list", _set(["model_params"], [1]), ["'model_params'"]),
        (
            "wrong-shape",
            _set(["model_state", "trunk.stem.0.weight"], None),
            ["trunk.stem.0.weight"],
        ),
    ],
)
def test_damaged_model_file_records_give_one_line(
    tmp_path, model_file, short_video, capsys, name, edit, words
):
    import torch

    if name == "wrong-shape":
        edit = _set(["model_state", "trunk.stem.0.weight"], torch.zeros(3, 5))
        words = ["do not fit", "trunk.stem.0.weight", "(3, 5) in the file"]
    bad = _edited(tmp_path, model_file, name, edit)
    _predict_fails_with_one_line(capsys, short_video, bad, *words)


def test_weights_that_do_not_fit_stop_evaluate_with_one_line(tmp_path, model_file):
    """The evaluate stage reads the model file through the same checks; weights of another
    architecture are named before any data is read (the shards folder does not exist)."""
    import torch

    from nrdfer.engine.pipeline import evaluate_fold
    from nrdfer.errors import UserError

    def other_widths(state):
        state["model_params"]["widths"] = [8, 16, 24]

    bad = _edited(tmp_path, model_file, "other", other_widths)
    params = load_params(write_tiny_params(tmp_path / "p.yaml"), ["base", "data", "evaluate"])
    data = __import__("dataclasses").replace(params["data"], U=4, V=2, size=32)
    with pytest.raises(UserError, match="do not fit the recorded model params") as info:
        evaluate_fold(tmp_path / "no-shards", "1", bad, base=params["base"], data=data,
                      evaluate=params["evaluate"], outputs=None)  # fmt: skip
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert torch.load(bad, weights_only=True)["model_params"]["widths"] == [8, 16, 24]


# ------------------------------------------------------------------------------------------
# flat memory on long videos
# ------------------------------------------------------------------------------------------


def _nearest_by_matrix(detected):
    """The frames x detections distance matrix this replaced (O(T * D) memory)."""
    idx = np.flatnonzero(np.asarray(detected, dtype=bool))
    dist = np.abs(np.arange(len(detected))[:, None] - idx[None, :])  # (T, D)
    return idx[dist.argmin(1)].tolist()


def test_nearest_detected_equals_the_distance_matrix():
    from nrdfer.preprocess.track import nearest_detected

    rng = np.random.default_rng(0)
    for _ in range(500):
        detected = rng.random(int(rng.integers(1, 80))) < rng.random()
        if detected.any():
            assert nearest_detected(list(detected)) == _nearest_by_matrix(detected)
    assert nearest_detected([False, True, False, False, False, True]) == [
        1,
        1,
        1,
        1,
        5,
        5,
    ]  # tie: earlier
    with pytest.raises(ValueError, match="no frame"):
        nearest_detected([False, False])


@pytest.mark.parametrize("every", [1, 3])
def test_streamed_detect_align_equals_detecting_in_memory(
    tmp_path, face_patch, detect_params, every
):
    """faces_in_stream (frames decoded again for the warp, detector batches of 2) gives the
    track and crops of faces_in_video on the frames in memory, over gaps without a face."""
    import dataclasses

    from nrdfer.preprocess.tools import build_detector
    from nrdfer.preprocess.track import faces_in_stream, faces_in_video
    from nrdfer.preprocess.video import read_video, video_frames

    frames = moving_face_frames(face_patch, 11)
    frames[4:7] = 90  # no face in frames 4-6
    path = write_shown_as(tmp_path / "gap.mkv", frames)
    detector = build_detector(dataclasses.replace(detect_params, batch_size=2), "cpu")
    ref = faces_in_video(read_video(path), detector, 48, every)
    opened = []

    def open_frames():
        opened.append(1)
        return video_frames(path)

    got, crops = faces_in_stream(open_frames, detector, 48, every, retain_bytes=0)
    assert np.array_equal(np.stack(list(crops)), ref.crops) and len(opened) == 2
    assert got.track == ref.track and got.source == ref.source and got.keys == ref.keys
    assert got.faces_per_frame == ref.faces_per_frame and got.crops is None
    # a video that decodes to fewer frames the second time is an error naming it
    short, crops = faces_in_stream(
        iter([video_frames(path), video_frames(path, max_frames=5)]).__next__,
        detector, 48, every, retain_bytes=0, name="gap.mkv",
    )  # fmt: skip
    with pytest.raises(Exception, match="gap.mkv: decoded to another number of frames"):
        list(crops)


@pytest.mark.parametrize("every", [1, 3])
def test_compact_track_gives_the_crops_of_a_list_of_faces(
    tmp_path, face_patch, detect_params, every
):
    """The streamed pass keeps the track in compact float32 arrays (FaceTrack): its crops are
    those of the track kept as a list of Face objects, tracked, filled and warped in memory
    over gaps without a face; the landmarks it hands back are the faces' landmarks_array()."""
    import dataclasses

    from nrdfer.preprocess.align import similarity_transform, warp
    from nrdfer.preprocess.tools import build_detector
    from nrdfer.preprocess.track import (
        FaceTracker,
        detect_tracked,
        faces_in_stream,
        nearest_detected,
        track_between,
    )
    from nrdfer.preprocess.video import read_video, video_frames

    frames = moving_face_frames(face_patch, 11)
    frames[4:7] = 90  # no face in frames 4-6
    path = write_shown_as(tmp_path / "gap.mkv", frames)
    decoded = read_video(path)
    detector = build_detector(dataclasses.replace(detect_params, batch_size=2), "cpu")
    n = len(decoded)
    keys = [*range(0, n, every), *([n - 1] if (n - 1) % every else [])]
    track = [None] * n
    found = detect_tracked(decoded[keys], detector, FaceTracker())
    for k, (_, face) in zip(keys, found, strict=True):
        track[k] = face
    track = track_between(decoded, track, keys)
    source = nearest_detected([f is not None for f in track])
    want = [warp(f, similarity_transform(track[s].landmarks_array(), 48), 48)
            for f, s in zip(decoded, source, strict=True)]  # fmt: skip

    got, crops = faces_in_stream(lambda: video_frames(path), detector, 48, every, retain_bytes=0)
    assert np.array_equal(np.stack(list(crops)), np.stack(want))
    assert got.source == source and got.keys == keys and len(got.track) == n
    assert 0 < got.detected == sum(f is not None for f in track) < n
    for t, face in enumerate(track):
        if face is None:
            assert got.track[t] is None
            continue
        assert np.array_equal(got.track.landmarks(t), face.landmarks_array())
        assert np.array_equal(got.track[t].landmarks_array(), face.landmarks_array())
        assert np.array_equal(np.float32(got.track[t].box), np.float32(face.box))


def test_the_tiny_detector_keeps_no_memory_arena(detect_params):
    """onnxruntime's CPU arena grows in powers of two and keeps its largest size: off, the
    detect_align peak on 1280x720 frames is about 120 MB lower (benchmarks/video_memory.py)."""
    from nrdfer.preprocess.faces import TinyRetinaFace
    from nrdfer.preprocess.tools import build_detector

    detector = build_detector(detect_params, "cpu")
    assert isinstance(detector, TinyRetinaFace)
    assert detector._get_session().get_session_options().enable_cpu_mem_arena is False


def test_nrdfer_faces_streams_json_and_caps_the_strip(tmp_path, face_patch, capsys, monkeypatch):
    """The streamed JSON is the document json.dumps would print; a strip over the cap stops
    with one line before anything is written."""
    import nrdfer.commands.faces as faces_cmd

    video = write_video(tmp_path / "clip.avi", moving_face_frames(face_patch, 5))
    out = tmp_path / "strip.png"
    argv = ["faces", str(video), "--json", "--out", str(out), "--params", str(ROOT / "params.yaml")]
    assert main(argv) == 0
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2) + "\n"
    assert [f["index"] for f in doc["frames"]] == list(range(5)) and doc["aligned"] == str(out)
    assert doc["frames"][0]["faces"] and out.is_file()
    out.unlink()
    monkeypatch.setattr(faces_cmd, "STRIP_MAX_BYTES", 3 * 64 * 64 * 4)  # 4 crops of 64 px
    assert main([*argv, "-S", "detect_align.output_size=64"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and not out.exists()
    assert "--max-frames 4" in captured.err and len(captured.err.strip().splitlines()) == 1
    assert main([*argv, "-S", "detect_align.output_size=64", "--max-frames", "4"]) == 0


# ------------------------------------------------------------------------------------------
# model size cap
# ------------------------------------------------------------------------------------------


def _model_params(**changes):
    import dataclasses

    from nrdfer.params import load_section

    return dataclasses.replace(load_section(ROOT / "params.yaml", "model"), **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"widths": (4, 12, 8), "image_size": 64, "frames": 6, "dynamic_blocks": 3, "M": 0, "N": 2,
         "snippet_len": 2, "snippet_stride": 1},
        {"widths": (8, 8, 16), "image_size": 112, "dsf": False, "dct": False, "M": 2,
         "spatial_heads": 3, "spatial_head_dim": 5, "temporal_mlp_dim": 7},
        {"widths": (6, 10, 14), "image_size": 17, "frames": 3, "snippet_len": 1,
         "snippet_stride": 1, "num_classes": 2, "neutral_index": 1},
    ],
)  # fmt: skip
def test_nrdfernet_parameters_are_counted_without_building(changes):
    from nrdfer.models import build_model
    from nrdfer.models.nrdfernet import nrdfernet_parameters
    from nrdfer.models.registry import parameter_count

    params = _model_params(**changes)
    built = sum(p.numel() for p in build_model(params).parameters())
    assert nrdfernet_parameters(params) == parameter_count(params) == built


def test_baselines_are_counted_on_the_meta_device():
    import torch

    from nrdfer.models import build_model
    from nrdfer.models.registry import parameter_count

    for name in ("c3d", "resnet18_lstm", "former_dfer"):
        params = _model_params(name=name, frames=16, image_size=64, widths=(16, 16, 16))
        torch.manual_seed(0)
        count = parameter_count(params)
        drawn = torch.rand(2)  # the count draws no random numbers
        torch.manual_seed(0)
        assert torch.equal(drawn, torch.rand(2))
        assert count == sum(p.numel() for p in build_model(params).parameters())


def test_params_yaml_describing_a_huge_model_stop_before_allocation():
    """``model.widths: [4096, 4096, 4096]`` (each in range) in training: one line, no build."""
    from nrdfer.models import build_model
    from nrdfer.models.registry import MAX_MODEL_PARAMETERS, ModelParamsError, parameter_count

    for name in ("nrdfernet", "c3d", "vgg11_lstm"):
        params = _model_params(name=name, widths=(4096, 4096, 4096), frames=16, image_size=112)
        assert parameter_count(params) > MAX_MODEL_PARAMETERS
        with pytest.raises(ModelParamsError, match="more than the 1,000,000,000") as info:
            build_model(params)
        assert "model.widths = [4096, 4096, 4096]" in str(info.value)


def _largest_model_file(path: Path) -> Path:
    """A model file (a few KB) whose every stored model param is at its allowed maximum."""
    import torch

    from nrdfer.checkpoint import save_checkpoint
    from nrdfer.model_file import model_file_state
    from nrdfer.params import to_dict

    state = torch.load(write_model_file(path.with_suffix(".base.pt")), weights_only=True)
    big = dict(state["model_params"], num_classes=1000, frames=512, image_size=1024,
               widths=[4096] * 3, dynamic_blocks=16, M=32, N=32, spatial_heads=64,
               spatial_head_dim=1024, spatial_mlp_dim=16384, temporal_heads=64,
               temporal_head_dim=1024, temporal_mlp_dim=16384, snippet_len=512,
               snippet_stride=512, neutral_index=999)  # fmt: skip
    preprocess = dict(state["preprocess"], U=256, V=2, size=1024)
    save_checkpoint(path, model_file_state({}, model_params=big,
                                           classes=[f"c{i}" for i in range(1000)],
                                           preprocess=preprocess, info={}))  # fmt: skip
    assert to_dict(big)
    return path


@pytest.mark.slow
def test_a_small_model_file_describing_a_huge_model_is_refused_before_allocation(tmp_path):
    """predict in a child process limited to 6 GB of address space: building the ~10^11
    parameter model would fail to allocate; the cap stops it first, with one line."""
    import subprocess
    import sys

    bad = _largest_model_file(tmp_path / "huge.pt")
    assert bad.stat().st_size < 200_000
    video = write_video(tmp_path / "v.avi", np.full((3, 64, 64, 3), 90, np.uint8))
    code = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30)); "
        "from nrdfer.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, "predict", str(video), "--checkpoint", str(bad)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    err = proc.stderr.strip()
    assert proc.returncode == 2, err
    assert len(err.splitlines()) == 1 and str(bad) in err and "parameters, more than" in err


# ------------------------------------------------------------------------------------------
# nrdfer predict: bad --window, Ctrl-C, a closed pipe
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", ["nan", "1e-320", "inf", "-1", "0.01", "-nan"])
def test_bad_window_is_one_line_before_any_work(capsys, short_video, tmp_path, window):
    missing = tmp_path / "no-model.pt"  # never opened: the value is checked first
    rc = main(["predict", str(short_video), "--checkpoint", str(missing), f"--window={window}"])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and f"--window {float(window)}" in err and "0 (no" in err


def _interrupt_at(monkeypatch, n: int) -> None:
    """Ctrl-C while the ``n``-th video (1-based) is being classified."""
    import nrdfer.predict.predictor as predictor

    real, calls = predictor.predict_video, []

    def predict_video(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(predictor, "predict_video", predict_video)


def test_ctrl_c_keeps_and_prints_the_finished_videos(
    capsys, monkeypatch, model_file, short_video, tmp_path
):
    """Ctrl-C during the third of four videos: exit 130, no traceback; text mode has printed the
    two finished ones; --json prints one JSON document per finished video (a failed one too)."""
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    videos = [str(short_video), str(broken), str(short_video), str(short_video)]
    _interrupt_at(monkeypatch, 3)
    assert main(["predict", *videos, "--checkpoint", str(model_file)]) == 130
    captured = capsys.readouterr()
    assert captured.out.count(f"{short_video}: ") == 1
    assert "interrupted after 2 of 4 videos" in captured.err and "Traceback" not in captured.err

    _interrupt_at(monkeypatch, 3)
    assert main(["predict", *videos, "--checkpoint", str(model_file), "--json"]) == 130
    captured = capsys.readouterr()
    docs = [json.loads(line) for line in captured.out.splitlines()]
    assert [d["path"] for d in docs] == [str(short_video), str(broken)]
    assert docs[0]["label"] and "cannot decode" in docs[1]["error"]


def test_ctrl_c_anywhere_else_is_one_line(capsys, monkeypatch, model_file, short_video):
    import nrdfer.predict.loading as loading

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(loading, "load_model_for_inference", interrupted)
    assert main(["predict", str(short_video), "--checkpoint", str(model_file)]) == 130
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == "nrdfer predict: interrupted\n"


def _nrdfer(*argv: str) -> list[str]:
    import sys

    return [
        sys.executable,
        "-c",
        "import sys; from nrdfer.cli import main; sys.exit(main())",
        *argv,
    ]


@pytest.mark.slow
def test_sigint_and_a_closed_pipe_give_no_traceback(model_file, short_video):
    """A real SIGINT once the first of eight videos is printed: exit 130, one line on stderr,
    no traceback; and ``nrdfer predict ... | head -1``: no BrokenPipeError traceback."""
    import os
    import signal
    import subprocess

    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = _nrdfer("predict", *[str(short_video)] * 8, "--checkpoint", str(model_file))
    # A shell that started the test run in the background (``cmd &``) hands SIGINT down as
    # ignored, and Python then installs no KeyboardInterrupt handler: restore the default.
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    first = proc.stdout.readline()  # the first video is done: the others are running
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert first.startswith(f"{short_video}: ") and proc.returncode == 130, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        "nrdfer predict: interrupted after "
    )
    assert (first + out).count(f"{short_video}: ") < 8

    shell = " ".join(shlex.quote(a) for a in argv) + " | head -1"
    pipe = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert pipe.stdout.startswith(str(short_video)) and len(pipe.stdout.splitlines()) == 1
    assert "Traceback" not in pipe.stderr and "BrokenPipe" not in pipe.stderr, pipe.stderr
