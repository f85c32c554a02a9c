"""Peak memory (RSS) of ``nrdfer predict``, the detect_align stage and ``nrdfer faces`` against
the length of the video: it must not grow with it (target <= 1 GB at every length).

Generates 25 fps videos (H.264, the skimage astronaut's face drifting over a blurred backdrop:
``predict_speed.write_face_video``)
of each requested length and size, a model file with params.yaml's model and input settings
(random weights: memory does not depend on them), and runs each tool on each video in a fresh
child process, which reports its own peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and wall time. Writes benchmarks/results/video_memory.json (or --out) with what was run.

    python benchmarks/video_memory.py [--videos 160x120:1,160x120:15] [--tools predict,detect_align,faces]
        [--params params.yaml] [--out PATH] [--add]

``--videos`` takes ``WxH:MINUTES`` items; the issue's full set is
``160x120:1,160x120:15,160x120:60,1280x720:10`` (hours of CPU time on two cores).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FPS = 25
TOOLS = ("predict", "detect_align", "faces")
TARGET_MB = 1024


def write_video(path: Path, width: int, height: int, minutes: float) -> Path:
    """A ``width`` x ``height`` H.264 video of ``minutes`` (predict_speed's face video)."""
    from predict_speed import write_face_video

    return write_face_video(path, minutes * 60, width, height, {"crf": "28", "preset": "ultrafast"})


def write_model(path: Path, params_file: Path) -> Path:
    """A model file with params.yaml's model and data / detect_align / enhance settings
    (predict_speed's model file)."""
    from predict_speed import write_model as write_model_file

    from nrdfer.params import load_params

    params = load_params(params_file, ["model", "data", "detect_align", "enhance"])
    detect = params["detect_align"]
    return write_model_file(path, params, detect.backend, detect.resnet50_weights)


def child(tool: str, video: Path, model: Path, params_file: Path, work: Path) -> None:
    """Run one tool on one video in this process; print its peak RSS and seconds as JSON."""
    import contextlib
    import io

    from nrdfer.cli import main
    from nrdfer.params import load_params
    from nrdfer.preprocess.pipeline import detect_align_tree

    start = time.perf_counter()
    sink = io.StringIO()
    if tool == "predict":
        with contextlib.redirect_stdout(sink):
            rc = main(["predict", str(video), "--checkpoint", str(model), "--json"])
    elif tool == "faces":
        with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
            rc = main(["faces", str(video), "--json", "--params", str(params_file)])
    else:
        p = load_params(params_file, ["detect_align"])["detect_align"]
        p = dataclasses.replace(p, workers=1)
        tree = work / "videos"
        tree.mkdir(exist_ok=True)
        link = tree / video.name
        if not link.exists():
            link.symlink_to(video)
        summary = detect_align_tree(tree, work / "faces", work / "report.csv", p)
        rc = 0 if summary.by_status == {"ok": 1} else 1
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    detail = json.loads(sink.getvalue()) if tool == "predict" and sink.getvalue() else {}
    windows = len(detail["results"][0]["windows"]) if detail.get("results") else None
    print(json.dumps({"rc": rc, "peak_rss_mb": round(peak_kb / 1024, 1),
                      "seconds": round(seconds, 1), "windows": windows}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", default="160x120:1,160x120:15")
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks/results/video_memory.json"))
    parser.add_argument(
        "--add",
        action="store_true",
        help="keep the rows already in --out (runs done apart); a row of the same tool and "
        "video is replaced by the new one",
    )
    parser.add_argument("--child", nargs=5, metavar=("TOOL", "VIDEO", "MODEL", "PARAMS", "WORK"))
    args = parser.parse_args()
    if args.child:
        tool, video, model, params_file, work = args.child
        child(tool, Path(video), Path(model), Path(params_file), Path(work))
        return
    tools = [t for t in args.tools.split(",") if t]
    unknown = set(tools) - set(TOOLS)
    if unknown:
        parser.error(f"unknown tools {sorted(unknown)}; choose from {', '.join(TOOLS)}")
    rows, runs = [], [args.videos]
    if args.add and Path(args.out).is_file():
        before = json.loads(Path(args.out).read_text())
        rows, runs = before["rows"], [*before["run"]["videos"].split(";"), args.videos]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = write_model(tmp / "model.pt", Path(args.params))
        for item in args.videos.split(","):
            size, minutes = item.split(":")
            width, height = (int(v) for v in size.split("x"))
            start = time.perf_counter()
            video = write_video(tmp / f"{size}-{minutes}min.mp4", width, height, float(minutes))
            made = time.perf_counter() - start
            for tool in tools:
                work = tmp / f"work-{tool}-{size}-{minutes}"
                work.mkdir()
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", tool, str(video), str(model),
                     args.params, str(work)],
                    capture_output=True, text=True, check=False,
                )  # fmt: skip
                last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "{}"
                result = json.loads(last) if proc.returncode == 0 else {"rc": proc.returncode}
                if proc.returncode:
                    result["stderr"] = proc.stderr.strip().splitlines()[-3:]
                row = {"tool": tool, "video": size, "minutes": float(minutes),
                       "frames": int(round(float(minutes) * 60 * FPS)), **result}  # fmt: skip
                rows = [r for r in rows if _row_key(r) != _row_key(row)] + [row]
                print(json.dumps(row), flush=True)
            print(f"{item}: video written in {made:.0f} s", flush=True)
            video.unlink()
    peak = max((r.get("peak_rss_mb", 0) for r in rows), default=0)
    write_json_out(
        Path(args.out),
        {
            "what": "peak RSS of each tool in a fresh process, per generated 25 fps video",
            "run": {"videos": ";".join(runs), "tools": sorted({r["tool"] for r in rows})},
            "target_mb": TARGET_MB,
            "peak_mb": peak,
            "within_target": peak <= TARGET_MB,
            "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
            "date": time.strftime("%Y-%m-%d", time.gmtime()),
            "rows": rows,
        },
    )


def _row_key(row: dict) -> tuple:
    return row["tool"], row["video"], row["minutes"]


def write_json_out(path: Path, data: dict) -> None:
    from nrdfer.io import write_json

    write_json(path, data)


if __name__ == "__main__":
    main()
