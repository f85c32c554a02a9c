"""Face detection/alignment and low-light enhancement (paper §4.1), shared by the pipeline
stages ``detect_align`` / ``enhance`` and by single-video inference.

Modules: :mod:`~nrdfer.preprocess.faces` (RetinaFace backends, :class:`Face`),
:mod:`~nrdfer.preprocess.retinaface_r50` (RetinaFace-ResNet-50 in PyTorch),
:mod:`~nrdfer.preprocess.align` (5-point template alignment),
:mod:`~nrdfer.preprocess.track` (per-clip tracking and :func:`faces_in_video`),
:mod:`~nrdfer.preprocess.enhance` (EnlightenGAN, Zero-DCE++, classical),
:mod:`~nrdfer.preprocess.video` (decoding, frame folders), :mod:`~nrdfer.preprocess.pipeline`
(the resumable, parallel jobs over folder trees). Nothing here imports models or engine.
"""

from nrdfer.preprocess.faces import Face, FaceDetector
from nrdfer.preprocess.track import VideoFaces, faces_in_video

__all__ = ["Face", "FaceDetector", "VideoFaces", "faces_in_video"]
