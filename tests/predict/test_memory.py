"""What ``nrdfer predict`` keeps per frame of a video: a compact record, not Python objects."""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nrdfer.predict import predictor as predictor_module
from nrdfer.predict.loading import load_model_for_inference
from nrdfer.predict.predictor import Predictor, predict_video
from nrdfer.preprocess.faces import Face
from nrdfer.preprocess.video import DecodedFrame

FRAME = np.full((16, 16, 3), 128, np.uint8)


class FakeStream:
    """A VideoStream of ``n`` identical small frames at 25 fps (no decoding)."""

    fps = 25.0
    frame_time = 1 / fps

    def __init__(self, n: int) -> None:
        self.n, self.path = n, Path("fake.mp4")

    def frame_count(self) -> int:
        return self.n

    def frames(self, want=None, stop=None):
        for p in range(self.n):
            yield DecodedFrame(p, p, p / self.fps, FRAME if want is None or p in want else None)
            if stop is not None and p >= stop:
                return


class OneFacePerFrame:
    """Finds one face per frame, made of new float objects as the real detector's are."""

    batch_size = 16

    def detect(self, frames):
        v = np.float32([2, 2, 14, 14, 0.99, 5, 6, 11, 6, 8, 9, 6, 12, 10, 12])  # box, score, 5 pts
        return [
            [
                Face(
                    box=tuple(float(x) for x in v[:4]),
                    score=float(v[4]),
                    landmarks=tuple((float(x), float(y)) for x, y in v[5:].reshape(5, 2)),
                )
            ]
            for _ in frames
        ]


@pytest.mark.parametrize(("every", "limit"), [(1, 160), (5, 50)])
def test_predict_keeps_a_few_bytes_per_frame(model_file, monkeypatch, every, limit):
    """Peak memory of predict grows by a compact record per frame (time, frame number and the
    detected frames' faces as float64: 132 bytes per frame at detect_every 1, 39 at 5), where
    lists of floats, ints and Face objects took 1038 and 326 bytes: measured between 4096 and
    12288 frames (whole blocks of the record), no timeline."""
    predictor = Predictor(load_model_for_inference(model_file), detect_every=every)
    predictor.detector = OneFacePerFrame()
    peak = {}
    tracemalloc.start()
    try:
        for n in (4096, 12288):
            monkeypatch.setattr(predictor_module, "VideoStream", lambda path, stride: FakeStream(n))  # noqa: B023
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            result = predict_video("fake.mp4", predictor)
            peak[n] = tracemalloc.get_traced_memory()[1] - before
            assert result.frames == n and result.detected_frames >= n // every  # key frames
            del result
    finally:
        tracemalloc.stop()
    per_frame = (peak[12288] - peak[4096]) / (12288 - 4096)
    assert 0 < per_frame < limit, per_frame
