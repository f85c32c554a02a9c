"""5-point similarity alignment onto the standard 112×112 face template (paper §4.1).

The template is the widely used ArcFace/InsightFace 112×112 landmark layout (left eye, right
eye, nose tip, left and right mouth corner). For another output size it is scaled uniformly.
The transform is a similarity (rotation, uniform scale, translation) fitted with
``cv2.estimateAffinePartial2D`` under RANSAC (OpenCV's default estimator, deterministic), then
refined by least squares over its inliers. With a reprojection threshold of 3 px (at 112 px,
scaled with the output size) the rigid points (eyes, nose) decide the fit and mouth corners
that an expression has moved far from the neutral template are left out instead of pulling the
whole crop: on the smiling astronaut photo a plain 5-point least-squares fit leaves the eyes
2.6 px off the template, this fit 0.9 px (docs/preprocess.md).
"""

from __future__ import annotations

import cv2
import numpy as np

TEMPLATE_SIZE = 112
"""Side of the square crop the template's coordinates are given for."""

TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)
"""Landmark positions (x, y) in a 112×112 aligned face."""

RANSAC_THRESHOLD_112 = 3.0
"""RANSAC reprojection threshold in pixels of a 112 px crop (OpenCV's default), scaled with size."""


def template(size: int) -> np.ndarray:
    """The five template points (5, 2) for a ``size`` × ``size`` crop."""
    return TEMPLATE_112 * (size / TEMPLATE_SIZE)


def similarity_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """The 2×3 similarity matrix taking ``landmarks`` (5, 2) onto :func:`template` (``size``)."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(
        src,
        template(size),
        method=cv2.RANSAC,
        ransacReprojThreshold=RANSAC_THRESHOLD_112 * size / TEMPLATE_SIZE,
    )
    if matrix is None:  # degenerate landmarks (all on one point): scale about their mean
        center = src.mean(0)
        matrix = np.array([[1, 0, 0], [0, 1, 0]], dtype=np.float64)
        matrix[:, 2] = template(size).mean(0) - center
    return matrix.astype(np.float32)


def warp(frame: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2×3 transform to an (H, W, 3) frame, giving the (size, size, 3) crop."""
    return cv2.warpAffine(
        frame, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )


def align_face(frame: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Crop the face with these 5 ``landmarks`` out of ``frame``, aligned, ``size`` × ``size``."""
    return warp(frame, similarity_transform(landmarks, size), size)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (N, 2) points through a 2×3 transform."""
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    return pts @ matrix[:, :2].T + matrix[:, 2]
