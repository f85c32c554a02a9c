"""The sections of params.yaml: one frozen dataclass each, every field with its allowed values
(what each value means: params.yaml)."""

import re
import types
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, BeforeValidator, ConfigDict

from nrdfer.labels import CLASSES, MAFW
from nrdfer.params.rules import Float, Int, Pair, Rule, Seq, Text

# Allowed values that several fields share


def class_counts(classes: tuple[str, ...]) -> Any:
    """A mapping with a count >= 0 for each of ``classes`` (not all 0), read-only."""
    return Annotated[
        dict[str, Int(0)],
        BeforeValidator(lambda v: dict(v) if isinstance(v, Mapping) else v),
        Rule(
            f"a count >= 0 for each of {', '.join(classes)}, not all 0",
            lambda v: set(v) == set(classes) and sum(v.values()) > 0,
        ),
        AfterValidator(types.MappingProxyType),
    ]


Counts = class_counts(CLASSES)
Path_ = r"[^\s\x00](.*[^\s\x00])?"  # no stray blank at either end
PathText = Text("a path", Path_)
PathOrEmpty = Text('a path, or "" (unused)', f"({Path_})?")
Device = Text("auto, cpu, cuda or cuda:N", r"auto|cpu|cuda(:\d+)?")
FrameName = Annotated[
    str,
    Rule(
        "a file name ending in .jpg with a {frame} field (and optionally {clip})",
        lambda v: "{frame" in v and re.fullmatch(r"([^{}/]|\{clip\}|\{frame(:0?\d*d)?\})*\.jpg", v),
    ),
]
Quality, Workers, Share, Fold = Int(0, 100), Int(1, 256), Float(0, 1), Int(1, 100)
WH = "[width, height]"

MODELS = ("nrdfernet", "c3d", "i3d_rgb", "resnet3d_18", "r2plus1d_18", "resnet3d_18_center",
          "ec_stfl", "resnet18_lstm", "resnet18_gru", "vgg11_lstm", "former_dfer")  # fmt: skip
"""The registered model names (``nrdfer.models.registry``; a test keeps the two in step)."""

# a section: frozen, checked on construction (strict types: no "3" for 3, no 1 for true)
frozen = pydantic.dataclasses.dataclass(
    frozen=True, config=ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
)


@frozen
class BaseParams:
    seed: Int(0, 2**32 - 1)
    device: Device


@frozen
class ModelParams:
    name: Literal[MODELS]
    num_classes: Int(2, 1000)
    frames: Int(2, 512)
    image_size: Int(16, 1024)
    widths: Seq(Int(1, 4096), length=3)
    dynamic_blocks: Int(1, 16)
    M: Int(0, 32)
    N: Int(1, 32)
    spatial_heads: Int(1, 64)
    spatial_head_dim: Int(1, 1024)
    spatial_mlp_dim: Int(1, 16384)
    temporal_heads: Int(1, 64)
    temporal_head_dim: Int(1, 1024)
    temporal_mlp_dim: Int(1, 16384)
    dropout: Float(0, 1, lt=True)
    embed_init_std: Float(0, 1, gt=True)
    dsf: bool
    dct: bool
    sf: bool
    snippet_len: Int(1, 512)
    snippet_stride: Int(1, 512)
    mu1: Share
    mu2: Share
    neutral_index: Int(0, 999)
    aux_loss_weight: Float(0, 100)


@frozen
class DetectAlignParams:
    backend: Literal["tiny", "resnet50"]
    resnet50_weights: PathOrEmpty
    score_threshold: Share
    nms_threshold: Float(0, 1, gt=True)
    max_side: Int(32, 16384, zero="never shrink")
    min_face: Float(0, 0.5)
    detect_every: Int(1, 1000)
    batch_size: Int(1, 4096)
    output_size: Int(16, 1024)
    frame_stride: Int(1, 1000)
    max_frames: Int(0)
    jpeg_quality: Quality
    workers: Workers


@frozen
class EnhanceParams:
    method: Literal["classical", "enlightengan", "zerodce"]
    enlightengan_weights: PathOrEmpty
    zerodce_weights: PathOrEmpty
    dark_threshold: Float(0, 255)
    gamma: Float(0, 10, gt=True)
    clahe_clip: Float(0, 100, gt=True)
    clahe_grid: Int(1, 64)
    batch_size: Int(1, 4096)
    jpeg_quality: Quality
    workers: Workers


@frozen
class SynthParams:
    dfew_clips: Int(5, 10**6, zero="none")
    dfew_class_counts: Counts
    dfew_frames: Pair(Int(2, 10**4))
    dfew_scene_size: Pair(Int(16, 4096), WH)
    dfew_face_size: Pair(Float(0, 0.5, gt=True))
    dfew_frame_size: Int(8, 1024)
    dfew_original_size: Pair(Int(16, 4096, even=True), WH)
    dfew_frame_name: FrameName
    dfew_split_spelling: Literal["hyphen", "underscore"]
    afew_clips: Int(2, 10**6, zero="none")
    afew_val_share: Share
    afew_class_counts: Counts
    afew_frames: Pair(Int(2, 10**4))
    afew_size: Pair(Int(16, 4096, even=True), WH)
    afew_face_size: Pair(Float(0, 0.5, gt=True))
    afew_dark_share: Share
    afew_dark_gain: Pair(Float(0, 1, gt=True))
    ferv39k_clips: Int(2, 10**6, zero="none")
    ferv39k_test_share: Float(0, 1, gt=True, lt=True)
    mafw_clips: Int(5, 10**6, zero="none")
    mafw_class_counts: class_counts(MAFW.classes)
    fps: Int(1, 240)
    jpeg_quality: Quality
    intensity: Pair(Float(0, 5))
    head_motion: Float(0, 10)
    n1_rate: Share
    n1_share: Pair(Share)
    n2_rate: Share
    n2_share: Pair(Share)
    test_noise: bool
    test_n1_rate: Share
    test_n1_share: Pair(Share)
    test_n2_rate: Share
    test_n2_share: Pair(Share)
    sheet_clips_per_class: Int(1, 100)
    sheet_frames: Int(1, 100)
    workers: Workers


@frozen
class TrainParams:
    epochs: Int(1, 10**5)
    optimizer: Literal["sgd", "adamw"]
    lr: Float(0, 10, gt=True)
    momentum: Float(0, 1, lt=True)
    weight_decay: Share
    lr_final_factor: Float(0, 1, gt=True)
    schedule: Literal["exponential", "cosine"]
    grad_clip: Float(0, 10**6)
    warmup_steps: Int(0, 10**9)
    ema_decay: Float(0, 1, lt=True)
    ema_bn_batches: Int(0, 10**6)
    label_smoothing: Float(0, 1, lt=True)
    precision: Literal["auto", "fp32", "bf16", "fp16"]
    channels_last: bool
    compile: bool
    eval_every_epoch: bool
    selection: Literal["last", "val"]
    log_every: Int(1, 10**6)


@frozen
class EvaluateParams:
    precision: Literal["auto", "fp32", "bf16"]
    save_features: bool
    fig5_clips: Int(0, 64)


@frozen
class IngestParams:
    dfew_frames: Literal["clip_224x224", "clip_224x224_16f", "original"]
    mafw_frames: Literal["frames", "clips", "root"]
    min_frames: Int(1, 10**6)
    verify_frames: bool


@frozen
class FoldsParams:
    scheme: Literal["auto", "official", "stratified"]
    k: Int(2, 100)
    val_fraction: Float(0, 1, lt=True)
    main: Seq(Fold)
    mafw: Seq(Fold)


@frozen
class ShardsParams:
    short_side: Int(16, 4096)
    quality: Quality
    maxcount: Int(1, 10**6)
    max_frames: Int(0)
    workers: Workers


@frozen
class DataParams:
    U: Int(1, 256)
    V: Int(1, 256)
    size: Int(16, 1024)
    crop_area: Pair(Float(0, 1, gt=True))
    crop_aspect: Pair(Float(0.1, 10))
    flip_p: Share
    brightness: Float(0, 10)
    rotation: Float(0, 180)
    augment_on: Literal["auto", "loader", "device"]
    batch_size: Int(1, 4096)
    num_workers: Int(0, 256)
    shuffle_buffer: Int(1, 10**6)
    decode_cache_mb: Int(0, 10**6)
    balanced: bool
    balanced_epoch: Literal["dataset", "largest_class"]
    resampled: bool


@frozen
class SourceParams:
    dfew_root: PathText
    afew_root: PathText
    ferv39k_root: PathText
    mafw_root: PathText


@frozen
class AblationParams:
    folds: Seq(Fold)
    dsf: Seq(bool)
    dct: Seq(bool)
    snippet_len: Seq(Int(1, 512))
    snippet_stride: Seq(Int(1, 512))
    M: Seq(Int(0, 32))
    N: Seq(Int(1, 32))


@frozen
class CompareParams:
    models: Seq(Literal[MODELS[1:]], min_len=0)
    folds: Seq(Fold)


@frozen
class ReportParams:
    fig4_fold: Fold
    tsne_perplexity: Float(1, 1000)
    tsne_max_points: Int(2, 10**6)


@frozen
class NoiseParams:
    levels: Seq(Share)
    n1_share: Pair(Float(0, 0.5))
    n2_share: Pair(Share)
    dfew_clips: Int(5, 10**6)
    seeds: Seq(Int(0, 2**32 - 1), min_len=2)


SECTIONS: dict[str, type] = {
    "base": BaseParams,
    "ingest": IngestParams,
    "folds": FoldsParams,
    "shards": ShardsParams,
    "data": DataParams,
    "detect_align": DetectAlignParams,
    "enhance": EnhanceParams,
    "model": ModelParams,
    "train": TrainParams,
    "train_afew": TrainParams,
    "evaluate": EvaluateParams,
    "synth": SynthParams,
    "source": SourceParams,
    "ablation": AblationParams,
    "compare": CompareParams,
    "report": ReportParams,
    "noise": NoiseParams,
}

OVERLAYS: dict[str, str] = {"train_afew": "train"}
"""Sections that hold only the keys that differ from another section: ``train_afew`` lists what
AFEW fine-tuning changes, every other key is ``train``'s."""
"""Section name in params.yaml -> dataclass."""
