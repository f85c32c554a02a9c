"""RetinaFace-ResNet-50 (Deng et al., CVPR 2020) in plain PyTorch, the paper's face detector.

The module and parameter names follow biubug6/Pytorch_Retinaface (``cfg_re50``) so that its
released ``Resnet50_Final.pth`` loads with a strict key check:

    input (B, 3, H, W), BGR minus (104, 117, 123)
      ↓ body: ResNet-50 stem + layer1..layer4 (layer2/3/4 returned: 512, 1024, 2048 ch, /8 /16 /32)
      ↓ fpn: 1×1 lateral convs to 256 ch, top-down nearest upsampling + 3×3 merge convs
      ↓ ssh1..ssh3: SSH context modules (3×3 | 5×5 | 7×7 receptive fields), 256 ch
      ↓ ClassHead / BboxHead / LandmarkHead: 1×1 convs, 2 anchors per location
    (B, A, 2) softmax scores, (B, A, 4) box offsets, (B, A, 10) landmark offsets

The weights are never downloaded: the user gives the file's path in params.yaml.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from nrdfer.errors import UserError
from nrdfer.preprocess.faces import MIN_SIZES, _BatchedDetector
from nrdfer.preprocess.weights import load_official_state_dict, load_weights

R50_MEAN_BGR = (104.0, 117.0, 123.0)
"""Per-channel BGR mean subtracted by biubug6's ``detect.py``."""

WEIGHTS_HELP = (
    "set detect_align.resnet50_weights (params.yaml or -S) to the path of biubug6's "
    "Resnet50_Final.pth (download it yourself from the Pytorch_Retinaface README's Google Drive "
    "link, e.g. to models/external/Resnet50_Final.pth), or use detect_align.backend: tiny"
)


def _conv_bn(cin: int, cout: int, kernel: int, leaky: float | None) -> nn.Sequential:
    """Conv (no bias) -> BN [-> LeakyReLU]; keys ``0.weight``, ``1.*`` as in biubug6."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if leaky is not None:
        layers.append(nn.LeakyReLU(leaky, inplace=True))
    return nn.Sequential(*layers)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3×3 conv), expansion 4."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int) -> None:
        super().__init__()
        cout = width * self.expansion
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet50Body(nn.Module):
    """ResNet-50 up to ``layer4``, returning the outputs of layer2, layer3 and layer4."""

    def __init__(self, blocks: tuple[int, ...] = (3, 4, 6, 3)) -> None:
        super().__init__()
        stem = 64
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = stem
        for i, n in enumerate(blocks):
            width = stem * 2**i
            layer = []
            for j in range(n):
                layer.append(Bottleneck(cin, width, 2 if (j == 0 and i > 0) else 1))
                cin = width * Bottleneck.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*layer))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c3, c4, c5]


class FPN(nn.Module):
    """Feature pyramid: lateral 1×1 convs, top-down nearest upsampling, 3×3 merge convs."""

    def __init__(self, in_channels: tuple[int, int, int], out_channels: int, leaky: float) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_channels, 1, leaky)
        self.output2 = _conv_bn(in_channels[1], out_channels, 1, leaky)
        self.output3 = _conv_bn(in_channels[2], out_channels, 1, leaky)
        self.merge1 = _conv_bn(out_channels, out_channels, 3, leaky)
        self.merge2 = _conv_bn(out_channels, out_channels, 3, leaky)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]


class SSH(nn.Module):
    """Single Stage Headless context module: concat of 3×3, 5×5 and 7×7 (stacked 3×3) paths."""

    def __init__(self, cin: int, cout: int, leaky: float) -> None:
        super().__init__()
        quarter = cout // 4
        self.conv3X3 = _conv_bn(cin, cout // 2, 3, None)
        self.conv5X5_1 = _conv_bn(cin, quarter, 3, leaky)
        self.conv5X5_2 = _conv_bn(quarter, quarter, 3, None)
        self.conv7X7_2 = _conv_bn(quarter, quarter, 3, leaky)
        self.conv7x7_3 = _conv_bn(quarter, quarter, 3, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mid = self.conv5X5_1(x)
        branches = [self.conv3X3(x), self.conv5X5_2(mid), self.conv7x7_3(self.conv7X7_2(mid))]
        return F.relu(torch.cat(branches, 1))


class _Head(nn.Module):
    """A 1×1 conv predicting ``per_anchor`` values for each of ``anchors`` anchors."""

    def __init__(self, cin: int, anchors: int, per_anchor: int) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # (B, C, H, W) -> (B, H, W, C)
        return out.reshape(out.shape[0], -1, self.per_anchor)  # (B, H*W*anchors, per_anchor)


class RetinaFaceR50Net(nn.Module):
    """The RetinaFace-ResNet-50 network (biubug6 ``cfg_re50``: in 256, out 256, 2 anchors).

    Args:
        in_channel: base width of the returned ResNet stages (layer2 = 2×, layer3 = 4×,
            layer4 = 8×).
        out_channel: FPN/SSH width.
        anchors: anchors per location (one per entry of a level's ``min_sizes``).
    """

    def __init__(
        self, in_channel: int = 256, out_channel: int = 256, anchors: int = len(MIN_SIZES[0])
    ) -> None:
        super().__init__()
        leaky = 0.1 if out_channel <= 64 else 0.0  # biubug6's rule
        self.body = ResNet50Body()
        self.fpn = FPN((in_channel * 2, in_channel * 4, in_channel * 8), out_channel, leaky)
        self.ssh1 = SSH(out_channel, out_channel, leaky)
        self.ssh2 = SSH(out_channel, out_channel, leaky)
        self.ssh3 = SSH(out_channel, out_channel, leaky)
        self.ClassHead = nn.ModuleList([_Head(out_channel, anchors, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(out_channel, anchors, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(out_channel, anchors, 10) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, 3, H, W) -> loc (B, A, 4), softmax scores (B, A, 2), landmarks (B, A, 10)."""
        p3, p4, p5 = self.fpn(self.body(x))
        feats = [self.ssh1(p3), self.ssh2(p4), self.ssh3(p5)]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], 1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], 1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], 1)
        return loc, F.softmax(conf, dim=-1), landms


def load_resnet50(path: str | Path, device: str | torch.device = "cpu") -> RetinaFaceR50Net:
    """Build :class:`RetinaFaceR50Net` and load biubug6's ``Resnet50_Final.pth`` from ``path``.

    Raises:
        UserError: no path given, the file is missing, or its keys do not match.
    """
    if not str(path):
        raise UserError(f"the resnet50 face detector needs its weights file: {WEIGHTS_HELP}")
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: RetinaFace-ResNet-50 weights not found; {WEIGHTS_HELP}")
    state = load_weights(path, "RetinaFace-ResNet-50")
    model = RetinaFaceR50Net()
    load_official_state_dict(model, state, str(path))
    return model.to(device).eval()


class RetinaFaceResNet50(_BatchedDetector):
    """The paper-faithful detector backend (see :class:`~nrdfer.preprocess.faces.FaceDetector`).

    Args:
        weights: path to ``Resnet50_Final.pth``.
        score_threshold: minimum face score.
        nms_threshold: NMS IoU threshold.
        batch_size: frames per forward pass.
        max_side: frames are shrunk so their longer side is at most this (0: never).
        device: torch device.
        min_face: smallest face to find as a share of the frame's longer side (a second pass
            runs where the first cannot find it; 0: first pass only). The pass is sized for the
            tiny backend's smallest reliable face; ResNet-50 finds smaller ones.
    """

    def __init__(
        self,
        weights: str | Path,
        score_threshold: float = 0.9,
        nms_threshold: float = 0.4,
        batch_size: int = 16,
        max_side: int = 0,
        device: str | torch.device = "cpu",
        min_face: float = 0.0,
    ) -> None:
        super().__init__(score_threshold, nms_threshold, batch_size, max_side, min_face)
        self.device = torch.device(device)
        self.net = load_resnet50(weights, self.device)

    @torch.inference_mode()
    def _forward(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(batch[..., ::-1])).to(self.device)  # RGB->BGR
        x = x.permute(0, 3, 1, 2).float()  # (N, H, W, 3) -> (N, 3, H, W)
        x = x - torch.tensor(R50_MEAN_BGR, device=self.device).view(1, 3, 1, 1)
        loc, conf, landms = self.net(x)
        return loc.float().cpu().numpy(), conf.float().cpu().numpy(), landms.float().cpu().numpy()
