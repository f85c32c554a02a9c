"""Hostile input: nothing destroyed, nothing silently dropped, bad input refused before work.

Output folders (synth, shards, detect_align, enhance) are replaced or cleaned only when their
command wrote them; readers check that every requested clip arrived exactly once and that
index.json agrees with the tars; outputs honour the umask; user mistakes on the command line
end with exit status 2 and one line, and the good inputs of a multi-input command keep their
results. (Every params field's range: test_params_ranges.py; damaged frames in enhance:
test_bad_inputs.py; last.pt after a resume: engine/test_resume_kill.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from nrdfer.checkpoint import save_checkpoint
from nrdfer.cli import main
from nrdfer.data import shards as S
from nrdfer.data.folds import make_folds
from nrdfer.data.manifest import ingest
from nrdfer.data.shards import stream
from nrdfer.errors import UserError
from nrdfer.io import OWNER_MARKER, atomic_path, claim_dir, write_json
from nrdfer.params import load_section
from nrdfer.preprocess.pipeline import detect_align_tree, enhance_tree
from nrdfer.preprocess.video import write_frames_atomic
from tests.conftest import ROOT
from tests.data.helpers import rewrite_tar
from tests.data.trees import make_afew, make_dfew
from tests.predict.conftest import face_frames, write_model_file, write_video

from .conftest import OUTPUT_FOLDERS, TinyRun
from .tiny import modes, write_tiny_params

PARAMS = ROOT / "params.yaml"


def one_error_line(err: str, *words: str) -> str:
    """The single ``error:`` line of a command's stderr, checked for ``words``."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    assert "error: " in lines[0] and all(w in lines[0] for w in words), lines[0]
    return lines[0]


# --------------------------------------------------------------------------------------------
# 1. Output folders: replaced or cleaned only by the command that wrote them
# --------------------------------------------------------------------------------------------


def test_synth_out_never_deletes_a_folder_it_did_not_write(tmp_path, capsys, monkeypatch):
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (project / "notes.txt").write_text("mine")
    params = write_tiny_params(tmp_path / "params.yaml")
    argv = ["synth", "--params", str(params), "--seed", "1", "--clips", "5", "--layout", "dfew",
            "--workers", "1"]  # fmt: skip
    assert main([*argv, "--out", str(project)]) == 2
    one_error_line(capsys.readouterr().err, str(project), "never replaced")
    monkeypatch.chdir(project)
    assert main([*argv, "--out", "."]) == 2  # the case that removed a project's .git
    one_error_line(capsys.readouterr().err, str(project))
    assert sorted(os.listdir(project)) == [".git", "notes.txt"]
    assert (project / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"

    out = tmp_path / "demo"
    out.mkdir()  # empty: fine
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / OWNER_MARKER).read_text() == "nrdfer synth\n"
    (out / "stale.txt").write_text("left over")  # synth's own folder: replaced whole
    assert main([*argv, "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists() and (out / "DFEW").is_dir()
    capsys.readouterr()

    shards = claim_dir(tmp_path / "shards", "the shards stage")  # another command's output
    (shards / "train-000000.tar").write_bytes(b"")
    assert main([*argv, "--out", str(shards)]) == 2
    one_error_line(capsys.readouterr().err, str(shards), "not an output folder of nrdfer synth")
    assert (shards / "train-000000.tar").exists()


def test_stage_output_folders_refuse_a_foreign_folder(tmp_path):
    """detect_align, enhance and shards clean or replace inside their output folder: a folder
    they did not write is refused before any work and keeps every file."""
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / ".hidden.tmp-1").write_text("would be removed as a leftover")
    (foreign / "notes.txt").write_text("keep")
    faces = make_afew(tmp_path / "faces", {("Train_AFEW", "Sad", "a"): 2}, video=False)
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "x.avi").write_bytes(b"")
    calls = {
        "detect_align": lambda: detect_align_tree(
            videos, foreign, tmp_path / "r.csv", load_section(PARAMS, "detect_align")
        ),
        "enhance": lambda: enhance_tree(
            faces, foreign, tmp_path / "r.csv", load_section(PARAMS, "enhance")
        ),
        "shards": lambda: S.write_shards(
            pd.DataFrame(), {}, faces, foreign, S.ShardSpec(32, 90, 2, 0), progress=False
        ),
    }
    for stage, call in calls.items():
        with pytest.raises(UserError, match=f"not an output folder of the {stage} stage"):
            call()
    assert sorted(os.listdir(foreign)) == [".hidden.tmp-1", "notes.txt"]
    assert not (tmp_path / "r.csv").exists()
    # a folder an earlier run of the stage wrote (with or without the marker) is its own
    enhance_tree(faces, tmp_path / "enh", tmp_path / "r.csv", load_section(PARAMS, "enhance"))
    assert (tmp_path / "enh" / OWNER_MARKER).read_text() == "the enhance stage\n"
    (tmp_path / "enh" / OWNER_MARKER).unlink()  # written before markers existed: .state says
    enhance_tree(faces, tmp_path / "enh", tmp_path / "r.csv", load_section(PARAMS, "enhance"))


# --------------------------------------------------------------------------------------------
# 3. Readers verify what they were asked for
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dfew")
    clips = {v: (1 + v % 7, 3 + v % 4) for v in range(1, 16)}
    make_dfew(root, clips, {v: 1 + v % 5 for v in clips})
    table = ingest("dfew", root, dfew_frames="clip_224x224", min_frames=1, verify=True)
    folds = make_folds(table, "official", 5, 0.0, seed=0)
    spec = S.ShardSpec(short_side=24, quality=90, maxcount=2, max_frames=0)
    S.write_shards(table, folds, root, root / "shards", spec, workers=1, progress=False)
    return root / "shards"


def data_params():
    import dataclasses

    return dataclasses.replace(
        load_section(PARAMS, "data"), U=2, V=2, size=24, batch_size=2, num_workers=0
    )


def keys_of(loader) -> list[str]:
    return [k for _, _, keys in loader for k in keys]


def test_a_clip_replaced_inside_a_tar_is_named_with_its_shard(tmp_path, shard_dir):
    copy = shutil.copytree(shard_dir, tmp_path / "s")
    victim = copy / "set_3-000000.tar"
    with tarfile.open(victim) as tar:
        first = tar.getnames()[0].split(".")[0]
    # same count, another clip: its members renamed
    rewrite_tar(victim, lambda n, b: (n.replace(first, "99999"), b))
    for workers in (0, 1):  # in-process and from a worker process: one line, no traceback
        with pytest.raises(S.CorruptShardError) as err:
            keys_of(S.eval_loader(copy, 3, data_params(), num_workers=workers))
        message = str(err.value)
        assert str(victim) in message and "'99999'" in message and "\n" not in message
        assert "re-run the shards stage" in message


def test_index_json_must_agree_with_the_tars(tmp_path, shard_dir):
    data = json.loads((shard_dir / S.INDEX).read_text())
    name = data["parts"]["set_2"]["shards"][0]["name"]
    gone = [c for c, e in data["clips"].items() if e["shard"] == name]

    def edited(edit) -> Path:
        copy = shutil.copytree(shard_dir, tmp_path / f"s{len(list(tmp_path.iterdir()))}")
        index = json.loads((copy / S.INDEX).read_text())
        edit(index)
        (copy / S.INDEX).write_text(json.dumps(index))
        return copy

    def drop_shard(index):  # the shard's entry removed, its clips still point to it
        index["parts"]["set_2"]["shards"] = index["parts"]["set_2"]["shards"][1:]

    def drop_all_trace(index):  # shard, clips and fold lists edited consistently: the tar stays
        drop_shard(index)
        for clip in gone:
            del index["clips"][clip]
        for fold in index["folds"].values():
            for split in ("train", "val", "test"):
                fold[split] = [c for c in fold[split] if c not in gone]

    def miscount(index):
        index["parts"]["set_2"]["shards"][0]["clips"] += 1

    def unknown_clip(index):
        index["folds"]["2"]["test"].append("77777")

    for edit, words in [
        (drop_shard, [f"shard {name} is not listed"]),
        (drop_all_trace, [f"shard {name} is not listed", "0 clips point to it"]),
        (miscount, [f"shard {name} is listed with"]),
        (unknown_clip, ["fold 2 test names clips no shard holds: '77777'"]),
    ]:
        with pytest.raises(S.CorruptShardError) as err:
            keys_of(S.eval_loader(edited(edit), 2, data_params()))
        assert all(w in str(err.value) for w in words), (edit.__name__, str(err.value))
        assert "re-run the shards stage" in str(err.value)


def test_every_requested_clip_arrives_exactly_once(shard_dir, monkeypatch):
    expected = S.ShardIndex(shard_dir).ids(4, "test")
    assert sorted(keys_of(S.eval_loader(shard_dir, 4, data_params()))) == sorted(expected)
    real = S.iter_shard
    lost = expected[0]

    def loses_a_clip(path, keys=None):  # a reader that drops a clip on the way
        return (s for s in real(path, keys) if s["__key__"] != lost)

    monkeypatch.setattr(stream, "iter_shard", loses_a_clip)  # where the stream reads tars
    with pytest.raises(S.CorruptShardError) as err:
        keys_of(S.eval_loader(shard_dir, 4, data_params()))
    assert "fold 4 test split did not arrive exactly once: missing" in str(err.value)
    assert repr(lost) in str(err.value) and str(shard_dir) in str(err.value)


# --------------------------------------------------------------------------------------------
# 4. Outputs honour the umask
# --------------------------------------------------------------------------------------------


def test_outputs_honour_the_umask(tmp_path, shard_dir):
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        write_json(out / "metrics.json", {"war": 0.5})
        with atomic_path(out / "plot.png") as tmp:
            tmp.write_bytes(b"png")
        save_checkpoint(out / "model.pt", {"w": torch.zeros(1)})
        write_frames_atomic(out / "clip", [torch.zeros(8, 8, 3, dtype=torch.uint8).numpy()], 90)
        table = ingest(
            "dfew", shard_dir.parent, dfew_frames="clip_224x224", min_frames=1, verify=False
        )
        folds = make_folds(table, "official", 5, 0.0, seed=0)
        spec = S.ShardSpec(short_side=24, quality=90, maxcount=4, max_frames=0)
        S.write_shards(table, folds, shard_dir.parent, out / "shards", spec, progress=False)
    finally:
        os.umask(old)
    assert (out / "shards" / S.INDEX).is_file() and (out / "clip" / "00001.jpg").is_file()
    assert modes(out) == {}


@pytest.mark.slow
def test_dvc_tracked_outputs_are_readable_by_others(tiny_run: TinyRun):
    """The tiny pipeline ran under umask 022 (tiny.run): every output file DVC tracks is 0644."""
    for folder in OUTPUT_FOLDERS:
        assert modes(tiny_run.repo / folder) == {}, folder


# --------------------------------------------------------------------------------------------
# 5. Command-line mistakes: exit 2 and one line; good inputs keep their results
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model_and_video(tmp_path_factory) -> tuple[Path, Path]:
    import skimage.data
    from cv2 import INTER_AREA, resize

    root = tmp_path_factory.mktemp("predict")
    patch = resize(skimage.data.astronaut()[20:220, 140:310], (85, 100), interpolation=INTER_AREA)
    return write_model_file(root / "model.pt"), write_video(root / "v.avi", face_frames(patch, 8))


def test_predict_refuses_bad_outputs_and_devices_before_any_work(tmp_path, capsys, model_and_video):
    model, video = model_and_video
    (tmp_path / "file.txt").write_text("x")
    base = ["predict", str(video), "--checkpoint", str(model)]
    for extra, words in [
        (["--plot", str(tmp_path)], ["--plot", "is a folder"]),
        (["--plot", str(tmp_path / "file.txt" / "fig.png")], ["file.txt is a file"]),
        (["--plot", str(tmp_path / "fig.xyz")], ["unknown image type"]),
        (["--device", "gpu"], ["--device = 'gpu': must be auto, cpu, cuda or cuda:N"]),
        (["--batch-size", "0"], ["--batch-size must be at least 1"]),
    ]:
        assert main([*base, *extra]) == 2, extra
        out, err = capsys.readouterr()
        assert out == "", extra  # refused before any video was read
        line = one_error_line(err, *words)
        assert "params.yaml" not in line
    if not torch.cuda.is_available():
        assert main([*base, "--device", "cuda"]) == 2
        line = one_error_line(capsys.readouterr().err, "--device = 'cuda'", "use auto or cpu")
        assert "params.yaml" not in line


def test_predict_bad_inputs_and_checkpoints_say_what_they_are(tmp_path, capsys, model_and_video):
    model, video = model_and_video
    folder = tmp_path / "clips"
    folder.mkdir()
    rc = main(["predict", str(folder), str(video), "--checkpoint", str(model), "--json"])
    out, err = capsys.readouterr()
    assert rc == 2 and [r["path"] for r in json.loads(out)["results"]] == [str(video)]
    one_error_line(err, f"{folder}: is a folder, not a video")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    for path, words in [
        (folder, [f"{folder}: is a folder, not a model file"]),
        (tmp_path / "notes.pt", ["not a readable model file", "train stage writes"]),
    ]:
        assert main(["predict", str(video), "--checkpoint", str(path)]) == 2
        line = one_error_line(capsys.readouterr().err, *words)
        assert "delete it" not in line and "weights_only" not in line  # it is the user's file


def test_predict_keeps_the_good_results_when_a_plot_cannot_be_written(
    tmp_path, capsys, monkeypatch, model_and_video
):
    import nrdfer.predict.plot as plot_module

    model, video = model_and_video
    second = shutil.copy(video, tmp_path / "w.avi")
    written = []

    def plot(result, path):  # the first plot fails (disk full), the second is written
        if not written:
            written.append(None)
            raise OSError(28, "No space left on device")
        written.append(path)

    monkeypatch.setattr(plot_module, "plot_prediction", plot)
    argv = ["predict", str(video), str(second), "--checkpoint", str(model), "--json",
            "--plot", str(tmp_path / "fig.png")]  # fmt: skip
    assert main(argv) == 2
    out, err = capsys.readouterr()
    results = json.loads(out)["results"]
    assert [r["path"] for r in results] == [str(video), str(second)]  # both kept
    assert "plot" not in results[0] and results[1]["plot"] == str(tmp_path / "fig-w.png")
    one_error_line(err, "--plot", "fig-v.png", "No space left on device")


def test_faces_and_export_refuse_a_folder_as_output_before_any_work(
    tmp_path, capsys, model_and_video
):
    model, video = model_and_video
    argv = ["faces", str(video), "--params", str(PARAMS), "--out", str(tmp_path)]
    assert main(argv) == 2
    one_error_line(capsys.readouterr().err, "--out", "is a folder")
    assert main(["export", "--checkpoint", str(model), "--onnx", str(tmp_path)]) == 2
    one_error_line(capsys.readouterr().err, "--onnx", "is a folder")
    assert main(["faces", str(tmp_path), "--params", str(PARAMS)]) == 2
    one_error_line(capsys.readouterr().err, "is a folder, not a video or image file")
