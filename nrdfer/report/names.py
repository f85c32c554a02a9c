"""Row names of the report's tables (no imports: the noise report reads result files only)."""

PAPER_NAMES = {
    "nrdfernet": "NR-DFERNet",
    "c3d": "C3D",
    "r2plus1d_18": "R(2+1)D",
    "resnet3d_18": "3D ResNet18",
    "i3d_rgb": "I3D-RGB",
    "resnet18_lstm": "ResNet18+LSTM",
    "resnet18_gru": "ResNet18+GRU",
    "vgg11_lstm": "VGG11+LSTM",
    "resnet3d_18_center": "3D R.18+Center Loss",
    "ec_stfl": "EC-STFL",
    "former_dfer": "Former-DFER",
}
"""Registered model name -> the paper's row name (Tables 4 and 5)."""

__all__ = ["PAPER_NAMES"]
