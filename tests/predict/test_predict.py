"""``nrdfer predict``: results, timeline, plot, enhancement, the filter, and bad input."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest
import torch

from nrdfer.checkpoint import save_checkpoint
from nrdfer.cli import main
from nrdfer.labels import CLASSES, NEUTRAL
from nrdfer.predict.decode import window_bounds
from nrdfer.predict.loading import load_model_for_inference
from nrdfer.predict.predictor import Predictor, predict_video
from tests.predict.conftest import FPS, write_model_file

T = 8  # U x V = 4 x 2 frames per clip in the tiny model file


def run_json(capsys, *argv: str) -> tuple[int, dict, str]:
    rc = main(["predict", *argv, "--json"])
    captured = capsys.readouterr()
    return rc, json.loads(captured.out), captured.err


def test_sparse_detection_gives_the_crops_of_detecting_every_frame(model_file, videos):
    """--detect-every 5 detects the sampled frames themselves: the same clips, so the same
    probabilities and attention as detecting every frame, with fewer detector calls."""
    loaded = load_model_for_inference(model_file, "cpu")
    every = predict_video(videos["long"], Predictor(loaded, detect_every=1))
    sparse = predict_video(videos["long"], Predictor(loaded, detect_every=5))
    assert sparse.frames == every.frames and sparse.detected_frames < every.detected_frames
    for a, b in zip([every.clip, *every.windows], [sparse.clip, *sparse.windows], strict=True):
        assert a.frames == b.frames and a.label == b.label
        assert a.probs == pytest.approx(b.probs, abs=1e-6)
        assert a.attention == pytest.approx(b.attention, abs=1e-6)
    with pytest.raises(ValueError, match="detect_every"):
        Predictor(loaded, detect_every=0)


def test_predict_json_and_plot(capsys, tmp_path, model_file, videos):
    png = tmp_path / "fig5.png"
    rc, out, err = run_json(
        capsys, str(videos["short"]), "--checkpoint", str(model_file), "--plot", str(png)
    )
    assert rc == 0, err
    assert out["classes"] == list(CLASSES) and out["errors"] == []
    (res,) = out["results"]
    for key in ("probs", "probs_before_filter"):
        assert list(res[key]) == list(CLASSES)
        assert sum(res[key].values()) == pytest.approx(1.0, abs=1e-5)
    assert res["label"] == max(res["probs"], key=res["probs"].get)
    assert isinstance(res["filter_fired"], bool)
    # detected: every 5th frame (0, 5, 10) to follow the face, then the other sampled frames
    assert res["frames"] == 12 and res["detected_frames"] == 9
    assert res["fps"] == pytest.approx(FPS) and res["duration"] == pytest.approx(1.2)
    frames = res["sampled_frames"]
    assert len(frames) == T
    # Test protocol (paper §3.2): n=12, U=4, V=2 -> tick 2.75, starts 1, 4, 6, 9.
    assert [f["frame"] for f in frames] == [1, 2, 4, 5, 6, 7, 9, 10]
    assert [f["time"] for f in frames] == pytest.approx(
        [i / FPS for i in [1, 2, 4, 5, 6, 7, 9, 10]]
    )
    weights = [f["attention"] for f in frames]
    assert weights[-1] is None  # NR-DFERNet: T-1 tokens, the last frame has none
    assert sum(weights[:-1]) == pytest.approx(1.0, abs=1e-5)
    assert res["windows"] == []  # 1.2 s fits in the default 5 s window
    assert set(res["timings"]) == {"decode", "detect_align", "model"}
    image = cv2.imread(str(png))
    assert image is not None and image.shape[0] > 200 and image.shape[1] > 400
    assert res["plot"] == str(png)


def test_text_output(capsys, model_file, videos):
    assert main(["predict", str(videos["short"]), "--checkpoint", str(model_file)]) == 0
    text = capsys.readouterr().out
    assert str(videos["short"]) in text and "before filter" in text and "attention" in text


def test_long_video_gives_a_timeline(capsys, model_file, videos):
    rc, out, err = run_json(
        capsys, str(videos["long"]), "--checkpoint", str(model_file), "--window", "1"
    )
    assert rc == 0, err
    (res,) = out["results"]
    windows = res["windows"]
    assert len(windows) == 4  # 40 frames at 10 fps, 1 s windows
    assert [w["start"] for w in windows] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert [w["end"] for w in windows] == pytest.approx([1.0, 2.0, 3.0, 4.0])
    for w in windows:
        assert sum(w["probs"].values()) == pytest.approx(1.0, abs=1e-5)
        assert len(w["sampled_frames"]) == T
        assert all(w["start"] <= f["time"] < w["end"] for f in w["sampled_frames"])
    # the whole-video clip spans the video
    assert res["sampled_frames"][0]["frame"] < 10 and res["sampled_frames"][-1]["frame"] >= 30


def test_window_bounds():
    times = [i / 10 for i in range(43)]
    assert window_bounds(times, 1.0, 0.1) == [(0, 10), (10, 20), (20, 30), (30, 43)]  # tail merged
    assert window_bounds(times[:36], 1.0, 0.1) == [(0, 10), (10, 20), (20, 30), (30, 36)]
    assert window_bounds(times[:10], 1.0, 0.1) == []  # one window: no timeline
    assert window_bounds(times, 0.0, 0.1) == []


def test_failures_are_reported_and_others_still_run(capsys, tmp_path, model_file, videos):
    missing = tmp_path / "missing.mp4"
    argv = [str(videos["broken"]), str(videos["no_face"]), str(videos["short"]), str(missing)]
    rc, out, err = run_json(capsys, *argv, "--checkpoint", str(model_file))
    assert rc == 2
    assert [r["path"] for r in out["results"]] == [str(videos["short"])]
    errors = {e["path"]: e["error"] for e in out["errors"]}
    assert set(errors) == {str(videos["broken"]), str(videos["no_face"]), str(missing)}
    assert "cannot decode" in errors[str(videos["broken"])]
    assert "no face found" in errors[str(videos["no_face"])]
    assert "not found" in errors[str(missing)]
    for path in errors:
        assert f"error: {path}" in err  # one clear line per failed file on stderr


def _bad_checkpoints(tmp_path, model_file):
    pick = tmp_path / "weights.pkl"
    pick.write_bytes(pickle.dumps({"state": np.zeros(3)}))  # not loadable with weights_only
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 512, dtype=np.uint8).tobytes())
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)  # a torch file of another format
    training = tmp_path / "last.pt"
    save_checkpoint(training, {"kind": "training", "epoch": 3})
    return {
        pick: "not a readable model file",
        noise: "not a readable model file",
        foreign: "not an nrdfer model file",
        training: "not a model file",
        tmp_path / "nothing.pt": "not found",
    }


def test_bad_checkpoints_exit_2(capsys, tmp_path, model_file, videos):
    for path, message in _bad_checkpoints(tmp_path, model_file).items():
        rc = main(["predict", str(videos["short"]), "--checkpoint", str(path)])
        err = capsys.readouterr().err
        assert rc == 2, path
        assert str(path) in err and message in err, err
        assert "train stage" in err and "weights_only" not in err and "delete it" not in err


def test_model_file_without_face_settings(capsys, tmp_path, model_file, videos):
    state = torch.load(model_file, weights_only=True)
    for key in ("detect_align", "enhance"):
        del state["preprocess"][key]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    assert main(["predict", str(videos["short"]), "--checkpoint", str(old)]) == 2
    err = capsys.readouterr().err
    assert str(old) in err and "detect_align" in err and "re-run training" in err


def test_enhancement_follows_the_model_file(tmp_path, videos):
    with_enh = load_model_for_inference(write_model_file(tmp_path / "enh.pt", enhance=True))
    without = load_model_for_inference(write_model_file(tmp_path / "raw.pt", enhance=False))
    dark_with = predict_video(videos["dark"], Predictor(with_enh))
    dark_without = predict_video(videos["dark"], Predictor(without))
    assert dark_with.enhanced_frames == T  # every sampled crop is dark
    assert dark_without.enhanced_frames == 0
    assert dark_with.crops.mean() > dark_without.crops.mean() + 10  # brightened
    bright = predict_video(videos["short"], Predictor(with_enh))
    assert bright.enhanced_frames == 0


def test_filter_fires_and_suppresses_neutral(tmp_path, videos):
    # mu1 = 0, mu2 = 1: every snippet is "clear" (Eq. 7), so the filter always fires.
    fires = load_model_for_inference(write_model_file(tmp_path / "f.pt", mu1=0.0, mu2=1.0))
    result = predict_video(videos["short"], Predictor(fires))
    assert result.clip.filter_fired
    assert result.clip.probs["Neutral"] == 0.0 and result.clip.probs_seq["Neutral"] > 0.0
    assert sum(result.clip.probs.values()) == pytest.approx(1.0, abs=1e-5)
    # sf off: no filter, probabilities before and after are equal
    off = load_model_for_inference(write_model_file(tmp_path / "o.pt", sf=False, mu1=0.0))
    plain = predict_video(videos["short"], Predictor(off))
    assert not plain.clip.filter_fired and plain.clip.probs == plain.clip.probs_seq
    assert CLASSES[NEUTRAL] == "Neutral"


def test_negative_window_is_a_user_error(capsys, model_file, videos):
    argv = ["predict", str(videos["short"]), "--checkpoint", str(model_file), "--window", "-1"]
    assert main(argv) == 2
    assert "--window" in capsys.readouterr().err


@pytest.mark.gpu
def test_predict_on_cuda_matches_cpu(tmp_path, model_file, videos):
    cpu = predict_video(videos["short"], Predictor(load_model_for_inference(model_file, "cpu")))
    gpu = predict_video(videos["short"], Predictor(load_model_for_inference(model_file, "cuda")))
    assert gpu.clip.frames == cpu.clip.frames
    for c in CLASSES:
        assert gpu.clip.probs[c] == pytest.approx(cpu.clip.probs[c], abs=1e-3)


def test_plot_paths_one_per_video():
    from pathlib import Path

    from nrdfer.commands.predict import plot_paths

    assert plot_paths("out/fig.png", ["a/x.mp4"]) == [Path("out/fig.png")]
    assert plot_paths("out/fig.png", ["a/x.mp4", "b/x.avi", "c/y.mp4"]) == [
        Path("out/fig-x.png"),
        Path("out/fig-x-2.png"),
        Path("out/fig-y.png"),
    ]


def test_sparse_detection_looks_at_every_frame_before_giving_up(model_file, tmp_path, face_patch):
    """A face visible only between the sparse frames is still found (all frames are tried
    before "no face")."""
    from tests.predict.conftest import face_frames, write_video

    frames = face_frames(face_patch, 12)
    blank = np.full_like(frames[0], 128)
    frames = np.stack([f if i in (2, 3, 7) else blank for i, f in enumerate(frames)])
    video = write_video(tmp_path / "brief.avi", frames)
    loaded = load_model_for_inference(model_file, "cpu")
    result = predict_video(video, Predictor(loaded, detect_every=5))
    assert result.frames == 12 and result.detected_frames >= 1


def test_detect_every_defaults_to_the_model_files_own(tmp_path, videos, monkeypatch):
    """Without --detect-every, predict finds faces as the model's training faces were found
    (the model file's detect_align.detect_every); the option overrides it."""
    import nrdfer.predict.predictor as predictor_module

    path = write_model_file(tmp_path / "model.pt")
    state = torch.load(path, weights_only=True)
    state["preprocess"]["detect_align"]["detect_every"] = 3
    save_checkpoint(path, state)
    used = []

    class Recording(Predictor):
        def __init__(self, loaded, batch_size=8, detect_every=1):
            used.append(detect_every)
            super().__init__(loaded, batch_size=batch_size, detect_every=detect_every)

    monkeypatch.setattr(predictor_module, "Predictor", Recording)  # predict imports it lazily
    assert main(["predict", str(videos["short"]), "--checkpoint", str(path)]) == 0
    assert (
        main(["predict", str(videos["short"]), "--checkpoint", str(path), "--detect-every", "2"])
        == 0
    )
    assert used == [3, 2]
