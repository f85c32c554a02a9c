"""The numbers the paper reports (Li et al., ACM MM 2022), to print beside ours.

Every table the pipeline writes puts these next to the measured values. UAR/WAR and per-class
accuracies are percentages; FLOPs are the paper's "GFLOPs" (multiply-accumulates, see
docs/model.md for the counting convention).
"""

from __future__ import annotations

# Table 1: components. (DSF, DCT, SF) -> (UAR, WAR). Setting letters as in the paper.
TABLE1: dict[str, tuple[bool, bool, bool, float, float]] = {
    "a": (False, False, False, 50.22, 63.52),
    "b": (False, False, True, 50.79, 63.85),
    "c": (False, True, False, 51.21, 64.62),
    "d": (False, True, True, 51.32, 64.90),
    "e": (True, False, False, 52.35, 65.36),
    "f": (True, False, True, 52.76, 66.02),
    "g": (True, True, False, 53.50, 67.31),
    "h": (True, True, True, 54.21, 68.19),
}

# Table 2: snippet filter stride S and window width L -> (UAR, WAR).
TABLE2: dict[tuple[int, int], tuple[float, float]] = {
    # (L, S)
    (3, 1): (54.16, 68.12),
    (3, 2): (54.21, 68.19),
    (3, 3): (54.08, 68.06),
    (6, 1): (54.02, 67.94),
    (6, 2): (53.96, 67.89),
    (6, 3): (54.04, 68.02),
}

# Table 3: spatial layers M and temporal layers N -> (UAR, WAR, GFLOPs).
TABLE3: dict[tuple[int, int], tuple[float, float, float]] = {
    (1, 4): (54.02, 68.04, 6.20),
    (2, 4): (54.21, 68.19, 6.33),
    (3, 4): (53.89, 67.86, 6.46),
    (1, 6): (53.30, 67.31, 7.31),
    (2, 6): (53.72, 67.52, 7.44),
    (3, 6): (53.05, 67.12, 7.57),
}

# Table 4: AFEW val after pre-training on DFEW fd1. name -> (UAR, WAR, GFLOPs); None = n/a.
TABLE4: dict[str, tuple[float | None, float, float | None]] = {
    "EmotiW-2019 Baseline": (None, 38.81, None),
    "C3D": (43.75, 46.72, 38.57),
    "I3D-RGB": (41.86, 45.41, 6.99),
    "R(2+1)D": (42.89, 46.19, 42.36),
    "3D ResNet18": (42.14, 45.67, 8.32),
    "ResNet18+LSTM": (43.96, 48.82, 7.78),
    "ResNet18+GRU": (45.12, 49.34, 7.78),
    "EC-STFL": (47.33, 50.66, 8.32),
    "Former-DFER": (47.42, 50.92, 9.11),
    "NR-DFERNet": (48.37, 53.54, 6.33),
}

# Table 5: DFEW 5-fold. name -> (sampling, 7 per-class accuracies in DFEW order, UAR, WAR,
# GFLOPs). TI = time interpolation, DS = dynamic sampling.
TABLE5: dict[str, tuple[str, tuple[float, ...], float, float, float | None]] = {
    "C3D (TI)": ("TI", (75.17, 39.49, 55.11, 62.49, 45.00, 1.38, 20.51), 42.74, 53.54, 38.57),
    "P3D (TI)": ("TI", (74.85, 43.40, 54.18, 60.42, 50.99, 0.69, 23.28), 43.97, 54.47, None),
    "R(2+1)D18 (TI)": ("TI", (79.67, 39.07, 57.66, 50.39, 48.26, 3.45, 21.06), 42.79, 53.22, 42.36),
    "3D ResNet18 (TI)": (
        "TI",
        (73.13, 48.26, 50.51, 64.75, 50.10, 0.00, 26.39),
        44.73,
        54.98,
        8.32,
    ),
    "I3D-RGB (TI)": ("TI", (78.61, 44.19, 56.69, 55.87, 45.88, 2.07, 20.51), 43.40, 54.27, 6.99),
    "VGG11+LSTM (TI)": (
        "TI",
        (76.89, 37.65, 58.04, 60.70, 43.70, 0.00, 19.73),
        42.39,
        53.70,
        31.65,
    ),
    "ResNet18+LSTM (TI)": (
        "TI",
        (78.00, 40.65, 53.77, 56.83, 45.00, 4.14, 21.62),
        42.86,
        53.08,
        7.78,
    ),
    "3D R.18+Center Loss (TI)": (
        "TI",
        (78.49, 44.30, 54.89, 58.40, 52.35, 0.69, 25.28),
        44.91,
        55.48,
        8.32,
    ),
    "EC-STFL (TI)": ("TI", (79.18, 49.05, 57.85, 60.98, 46.15, 2.76, 21.51), 45.35, 56.51, 8.32),
    "3D ResNet18": ("DS", (76.32, 50.21, 64.18, 62.85, 47.52, 0.00, 24.56), 46.52, 58.27, 8.32),
    "ResNet18+LSTM": ("DS", (83.56, 61.56, 68.27, 65.29, 51.26, 0.00, 29.34), 51.32, 63.85, 7.78),
    "ResNet18+GRU": ("DS", (82.87, 63.83, 65.06, 68.51, 52.00, 0.86, 30.14), 51.68, 64.02, 7.78),
    "Former-DFER": ("DS", (84.05, 62.57, 67.52, 70.03, 56.43, 3.45, 31.78), 53.69, 65.70, 9.11),
    "NR-DFERNet": ("DS", (88.47, 64.84, 70.03, 75.09, 61.60, 0.00, 19.43), 54.21, 68.19, 6.33),
    "NR-DFERNet*": ("DS", (86.42, 65.10, 70.40, 72.88, 50.10, 0.00, 45.44), 55.77, 68.01, 6.33),
}

# FERV39k and MAFW: the NR-DFERNet paper reports neither; these are the numbers other papers
# publish. name -> (UAR, WAR, source).
FERV39K: dict[str, tuple[float, float, str]] = {
    "NR-DFERNet": (
        33.99,
        45.97,
        "not in the NR-DFERNet paper; as listed in the FERV39k comparison tables of later DFER "
        "papers (e.g. MAE-DFER, Sun et al., ACM MM 2023)",
    ),
    "Former-DFER": (
        37.20,
        46.85,
        "as listed in the FERV39k comparison tables of later DFER papers (e.g. MAE-DFER, Sun "
        "et al., ACM MM 2023); the Former-DFER repository's README gives 36.88 / 45.72",
    ),
}
MAFW: dict[str, tuple[float, float, str]] = {
    "Former-DFER": (
        31.16,
        43.27,
        "MAFW paper (Liu et al., ACM MM 2022), 11 single-expression classes, 5-fold mean",
    ),
}
