"""Typed, frozen parameters loaded from ``params.yaml``.

This is the only module that reads YAML parameters. ``params.yaml`` has one top-level section
per pipeline stage plus a shared ``base`` section; each section maps onto a frozen dataclass
below. Loading is strict: an unknown key, a missing key or a value of the wrong type raises
:class:`ParamsError` naming the dotted key and the file.

Overrides use the syntax of ``dvc exp run -S``: ``section.key=value`` with the value parsed as
YAML (``model.M=3``, ``train.lr=3e-4``, ``model.dsf=false``, ``data.folds=[1,2]``).

Only ``stages/`` and ``cli.py`` call :func:`load_params`; library code receives the
dataclasses (or plain arguments) and never sees the file.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from nrdfer.errors import UserError


class ParamsError(UserError, ValueError):
    """A params file (or an override) does not match the typed schema."""


# --------------------------------------------------------------------------------------------
# Sections. Each field has a comment; every field must be present in params.yaml (no silent
# defaults), so a reader of params.yaml sees every knob the code uses.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BaseParams:
    """Settings shared by every stage."""

    seed: int  # master seed: data generation, splits, sampling, initialisation
    device: str  # "auto" (CUDA when available, else CPU), "cpu", "cuda" or "cuda:N"


@dataclass(frozen=True)
class ModelParams:
    """The network (paper Sec. 3, sizes from spec/architecture.md); switches = Tables 1-3 rows."""

    name: str  # registered model name: "nrdfernet" or a baseline (nrdfer.models.registry)
    num_classes: int  # K output classes (7 basic expressions, nrdfer.labels.CLASSES order)
    frames: int  # T frames per clip (U x V = 8 x 2 = 16 in the paper)
    image_size: int  # square input side in pixels (112 in the paper)
    widths: list[int]  # channels of the three one-block ResNet stages (64, 128, 256)
    dynamic_blocks: int  # BasicBlocks in the DSF dynamic branch (3, Sec. 3.3)
    M: int  # spatial transformer layers in the DSF static branch (Table 3)
    N: int  # temporal transformer layers (Table 3)
    spatial_heads: int  # attention heads of the spatial transformer (4)
    spatial_head_dim: int  # width of one spatial attention head (32)
    spatial_mlp_dim: int  # hidden width of the spatial transformer MLP (256)
    temporal_heads: int  # attention heads of the temporal transformer (4)
    temporal_head_dim: int  # width of one temporal attention head (32)
    temporal_mlp_dim: int  # hidden width of the temporal transformer MLP (512)
    dropout: float  # dropout in attention output, MLP and after position embeddings (0.0)
    embed_init_std: float  # std of the normal init of position embeddings / learned class token
    dsf: bool  # Table 1 DSF: true = dynamic + static branch, false = static branch only
    dct: bool  # Table 1 DCT: true = dynamic class token (Eq. 5), false = one learned token
    sf: bool  # Table 1 SF: apply the snippet-based filter (Eq. 7) at evaluation/inference
    snippet_len: int  # L, snippet window width in frame tokens (Table 2)
    snippet_stride: int  # S, snippet window stride (Table 2)
    mu1: float  # Eq. 7 threshold: a snippet's max probability must exceed it (0.7)
    mu2: float  # Eq. 7 threshold: a snippet's neutral probability must stay below it (0.05)
    neutral_index: int  # index of the neutral class in the logits (nrdfer.labels.NEUTRAL = 2)
    aux_loss_weight: float  # λ of the feature loss of baselines resnet3d_18_center / ec_stfl


@dataclass(frozen=True)
class DetectAlignParams:
    """Face detection + 5-point alignment of raw videos (stage ``detect_align``; paper §4.1)."""

    backend: Literal["tiny", "resnet50"]  # tiny: shipped MobileNet-0.25 ONNX; resnet50: biubug6
    resnet50_weights: str  # backend resnet50: path to biubug6 Resnet50_Final.pth; "" = unused
    score_threshold: float  # minimum face score kept after decoding (RetinaFace softmax)
    nms_threshold: float  # IoU above which overlapping detections are suppressed
    max_side: int  # detect on frames shrunk to this longer side at most; 0 = never shrink
    batch_size: int  # frames per detector call
    output_size: int  # side of the aligned square face crop in pixels (template scaled from 112)
    frame_stride: int  # keep every n-th decoded frame (1 = all)
    max_frames: int  # keep at most this many frames per video after the stride; 0 = all
    jpeg_quality: int  # JPEG quality of the written face frames (0-100)
    workers: int  # parallel worker processes over videos (1 = in-process)


@dataclass(frozen=True)
class EnhanceParams:
    """Low-light enhancement of dark face frames (stage ``enhance``; EnlightenGAN in the paper)."""

    method: Literal["classical", "enlightengan", "zerodce"]  # classical: CLAHE + gamma, no file
    enlightengan_weights: str  # method enlightengan: path to 200_net_G_A.pth; "" = unused
    zerodce_weights: str  # method zerodce: path to neuro-low-light best_model.pth; "" = unused
    dark_threshold: float  # enhance a frame when its mean luma (BT.601, 0-255) is below this
    gamma: float  # classical: output = input ** gamma on [0, 1] after CLAHE (< 1 brightens)
    clahe_clip: float  # classical: CLAHE clip limit on the L channel of Lab
    clahe_grid: int  # classical: CLAHE tiles per side
    batch_size: int  # frames per network call (enlightengan / zerodce)
    jpeg_quality: int  # JPEG quality of the written frames (0-100)
    workers: int  # parallel worker processes over clips (1 = in-process)


@dataclass(frozen=True)
class SynthParams:
    """The generated demo data set in DFEW and AFEW layouts (stage ``synth``; docs/demo-data.md)."""

    dfew_clips: int  # number of DFEW-layout clips (all single-labeled, split into 5 folds)
    # relative class frequencies (DFEW's counts, disgust softened)
    dfew_class_counts: dict[str, int]
    dfew_frames: tuple[int, int]  # min, max frames per DFEW clip (uniform; clips < 16 frames occur)
    # width, height of the rendered DFEW scene before face cropping
    dfew_scene_size: tuple[int, int]
    dfew_face_size: tuple[float, float]  # min, max face half-height as a share of the scene height
    # side of the face crops written to Clip/clip_224x224 (224 in the real set)
    dfew_frame_size: int
    dfew_original_size: tuple[int, int]  # width, height of Clip/original/<id>.mp4 (demo: MPEG-4)
    dfew_frame_name: str  # frame file name pattern, keys {clip} (int id) and {frame} (1-based)
    # train(single-labeled) or train(single_labeled)
    dfew_split_spelling: Literal["hyphen", "underscore"]
    afew_clips: int  # number of AFEW-layout clips (Train_AFEW + Val_AFEW)
    afew_val_share: float  # share of AFEW clips in Val_AFEW (per class)
    afew_class_counts: dict[str, int]  # relative class frequencies (AFEW train+val counts)
    afew_frames: tuple[int, int]  # min, max frames per AFEW clip
    afew_size: tuple[int, int]  # width, height of the AFEW .avi scenes
    afew_face_size: tuple[float, float]  # min, max face half-height as a share of the frame height
    afew_dark_share: float  # share of AFEW clips that are dark (low light, need enhancement)
    afew_dark_gain: tuple[float, float]  # min, max brightness factor of a dark clip
    fps: int  # frame rate of the written videos
    jpeg_quality: int  # JPEG quality of the DFEW face crops (0-100)
    intensity: tuple[float, float]  # min, max expression intensity at apex (1 = full prototype)
    head_motion: float  # amplitude of head shift / zoom / in-plane rotation (1 = default)
    n1_rate: float  # share of clips with N1 noise (no face, occlusion, or a cut to another person)
    n1_share: tuple[float, float]  # min, max share of an N1 clip's frames that are irrelevant
    n2_rate: float  # share of non-neutral clips with N2 noise (expression only in a short window)
    n2_share: tuple[float, float]  # min, max share of an N2 clip's frames in the expressive window
    sheet_clips_per_class: int  # contact sheet: clips shown per class
    sheet_frames: int  # contact sheet: frames shown per clip
    workers: int  # parallel worker processes over clips (1 = in-process)


@dataclass(frozen=True)
class TrainParams:
    """Training (paper §4.2; nrdfer/engine/train.py, docs/engine.md). Also the ``train_afew``
    section (fine-tuning on AFEW from a DFEW checkpoint), an overlay of ``train``: the keys it
    lists replace train's, the others are train's (:data:`OVERLAYS`)."""

    epochs: int  # training epochs (paper: 70 on DFEW, 30 when fine-tuning on AFEW)
    optimizer: Literal["sgd", "adamw"]  # paper: SGD; adamw converges faster for small demo runs
    lr: float  # initial learning rate (paper: 1e-3 on DFEW, 3e-4 on AFEW)
    momentum: float  # SGD momentum (paper: 0.9); AdamW beta1
    weight_decay: float  # weight decay; not in the paper (authors' code: 0.1)
    lr_final_factor: float  # final lr = lr x this; ExponentialLR gamma = factor**(1/epochs)
    grad_clip: float  # max global gradient norm before each step; 0 = no clipping
    precision: Literal["auto", "fp32", "bf16", "fp16"]  # auto: bf16/fp16 on CUDA, fp32 on CPU
    channels_last: bool  # channels-last conv weights on CUDA (ignored on CPU)
    compile: bool  # wrap the model in torch.compile
    eval_every_epoch: bool  # test-fold eval per epoch: Fig. 4 curves, labelled best-on-test
    selection: Literal["last", "val"]  # kept model: last epoch or best val-split WAR after SF
    log_every: int  # steps between loss updates on the progress bar


@dataclass(frozen=True)
class EvaluateParams:
    """Evaluation of a trained model on its test fold (nrdfer/engine/evaluate.py)."""

    precision: Literal["auto", "fp32", "bf16"]  # forward autocast; auto: bf16 on CUDA, fp32 on CPU
    save_features: bool  # write pooled clip features + attention (npz) for the t-SNE of Fig. 6


@dataclass(frozen=True)
class IngestParams:
    """DFEW / AFEW tree -> manifest (stage ``ingest``; nrdfer/data/manifest.py, docs/data.md)."""

    # DFEW frame source under Clip/
    dfew_frames: Literal["clip_224x224", "clip_224x224_16f", "original"]
    # clips with fewer readable frames are left out (status too_short); shorter than T are padded
    min_frames: int
    # decode every frame at ingest (exact counts, finds corrupt frames) vs first/last only
    verify_frames: bool


@dataclass(frozen=True)
class FoldsParams:
    """Fold assignments (stage ``folds``; nrdfer/data/folds.py). Seeded from ``base.seed``."""

    # auto: official splits when the manifest has them
    scheme: Literal["auto", "official", "stratified"]
    k: int  # folds of the stratified scheme (data without official splits)
    # share of each fold's training clips held out (per class) for model selection; 0 = none
    val_fraction: float
    main: tuple[int, ...]  # DFEW folds the main model trains and is evaluated on (dvc.yaml)


@dataclass(frozen=True)
class ShardsParams:
    """WebDataset shards (stage ``shards``; nrdfer/data/shards.py, docs/data.md)."""

    # stored frames are shrunk to this short side, never enlarged (room for the 90-100 % crop)
    short_side: int
    quality: int  # JPEG quality of the stored frames (0-100)
    maxcount: int  # clips per tar shard
    # keep at most this many frames per clip, evenly spaced; 0 = all (exact paper sampling)
    max_frames: int
    workers: int  # parallel worker processes over shards (1 = in-process)


@dataclass(frozen=True)
class DataParams:
    """Frame sampling, augmentation and loaders (paper §3.2, §4.2; used by train and evaluate)."""

    U: int  # segments per clip (paper: 8)
    V: int  # consecutive frames per segment (paper: 2); T = U x V
    size: int  # output frame side after crop/resize (paper: 112)
    crop_area: tuple[float, float]  # random-sized crop: share of the frame area (authors: 0.9-1.0)
    crop_aspect: tuple[float, float]  # random-sized crop: aspect ratio w/h range (authors: 5/7-7/5)
    flip_p: float  # horizontal flip probability
    brightness: float  # brightness jitter b: factor uniform in [max(0, 1-b), 1+b] (authors: 0.6)
    rotation: float  # rotation uniform in +-this many degrees (authors: 4)
    # where the training warp runs: loader (its workers, OpenCV), device (after batching, on
    # the training device), auto (device on an accelerator, loader on CPU)
    augment_on: Literal["auto", "loader", "device"]
    batch_size: int  # clips per batch (per process under DDP; paper: 32)
    num_workers: int  # loader workers (0: decode in the consuming process, between steps)
    # process: persistent DataLoader worker processes; thread: threads of the training
    # process (OpenCV releases the GIL; they share the training loop's GIL)
    worker_kind: Literal["process", "thread"]
    shuffle_buffer: int  # training shuffle buffer, clips per worker
    balanced: bool  # class-balanced oversampling of the training set (the paper's NR-DFERNet*)
    # train reader draws shards with replacement, equal batches per rank (use for DDP)
    resampled: bool


@dataclass(frozen=True)
class SourceParams:
    """Where the data come from. Used only by dvc.yaml (``${source.dfew_root}``), so DVC tracks
    them; the default is the generated demo set. Point them at your licensed copies to run the
    paper (README: "From the demo to the paper")."""

    dfew_root: str  # DFEW tree (Clip/, EmoLabel_DataSplit/); demo: data/raw/demo/DFEW
    afew_root: str  # AFEW tree (Train_AFEW/, Val_AFEW/ of .avi); demo: data/raw/demo/AFEW


@dataclass(frozen=True)
class AblationParams:
    """The paper's ablation grids, run as DVC ``matrix`` stages (Tables 1-3)."""

    folds: tuple[int, ...]  # DFEW folds each ablation trains on (paper: 1-5; demo: fold 1)
    dsf: tuple[bool, ...]  # Table 1: dynamic-static fusion on/off (SF on/off is evaluated for each)
    dct: tuple[bool, ...]  # Table 1: dynamic class token on/off
    snippet_len: tuple[int, ...]  # Table 2: snippet widths L (evaluation only, no re-training)
    snippet_stride: tuple[int, ...]  # Table 2: snippet strides S
    M: tuple[int, ...]  # Table 3: spatial transformer layers
    N: tuple[int, ...]  # Table 3: temporal transformer layers


@dataclass(frozen=True)
class CompareParams:
    """Baselines trained in the same harness for Tables 4 and 5 (nrdfer/models/baselines)."""

    models: tuple[str, ...]  # registered baseline names (nrdfer flops --model NAME); [] = none
    folds: tuple[int, ...]  # DFEW folds the baselines train on (paper: 1-5)


@dataclass(frozen=True)
class ReportParams:
    """Paper tables and figures (nrdfer/report)."""

    fig4_fold: int  # fold whose per-epoch test curves make Fig. 4 (paper: fd5)
    fig5_clips: int  # test clips shown in Fig. 5 (attention with and without DCT)
    tsne_perplexity: float  # t-SNE perplexity of Fig. 6
    tsne_max_points: int  # at most this many clips per t-SNE panel (evenly subsampled)


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
}
"""Section name in params.yaml -> dataclass."""

OVERLAYS: dict[str, str] = {"train_afew": "train"}
"""Sections that hold only the keys that differ from another section: ``train_afew`` lists what
AFEW fine-tuning changes, every other key is ``train``'s."""


T = TypeVar("T")


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str, source: str) -> Any:
    """Check ``value`` against the annotation ``tp`` and convert containers; raise on mismatch."""

    def fail(extra: str = "") -> ParamsError:
        got = f"{type(value).__name__} {value!r}"
        return ParamsError(
            f"{source}: key '{key}': expected {_type_name(tp)}, got {got}{extra}. "
            f"Fix the value in {source}."
        )

    if tp is Any:
        return value
    origin = get_origin(tp)
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(a) for a in get_args(tp))
            raise ParamsError(
                f"{source}: key '{key}': {value!r} is not one of {choices}. "
                f"Fix the value in {source}."
            )
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise fail()
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, key, source)
            except ParamsError as exc:
                errors.append(exc)
        raise fail()
    if origin in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            raise fail()
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise fail(f" (needs exactly {len(args)} items)")
            return tuple(
                _convert(v, a, f"{key}[{i}]", source)
                for i, (v, a) in enumerate(zip(value, args, strict=True))
            )
        item_tp = args[0] if args else Any
        items = [_convert(v, item_tp, f"{key}[{i}]", source) for i, v in enumerate(value)]
        return tuple(items)  # frozen: lists become tuples
    if origin is dict:
        if not isinstance(value, Mapping):
            raise fail()
        k_tp, v_tp = get_args(tp) or (Any, Any)
        return types.MappingProxyType(
            {
                _convert(k, k_tp, key, source): _convert(v, v_tp, f"{key}.{k}", source)
                for k, v in value.items()
            }
        )
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, Mapping):
            raise fail()
        return _build(tp, value, key, source)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise fail()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise fail()
    if tp is float:
        # YAML reads 1e-3 as a string (no dot in the mantissa); accept it like DVC/YAML 1.2 does.
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise fail() from None
        raise fail()
    if tp is str:
        if isinstance(value, str):
            return value
        raise fail()
    raise ParamsError(f"{source}: key '{key}': unsupported annotation {_type_name(tp)}")


def _unknown_keys(cls: type, data: Mapping[str, Any], prefix: str, source: str) -> None:
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ParamsError(
            f"{source}: unknown key '{prefix}.{unknown[0]}' (known keys of '{prefix}': "
            f"{', '.join(names)}). Remove it or fix its spelling."
        )


def _build(cls: type[T], data: Mapping[str, Any], prefix: str, source: str) -> T:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    _unknown_keys(cls, data, prefix, source)
    missing = [n for n in names if n not in data]
    if missing:
        raise ParamsError(
            f"{source}: missing key '{prefix}.{missing[0]}'. Add it to {source} "
            f"(see the project's params.yaml for its meaning)."
        )
    values = {n: _convert(data[n], hints[n], f"{prefix}.{n}", source) for n in names}
    return cls(**values)


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``-S`` override ``section.key=value`` (value as YAML) into (dotted key, value)."""
    if "=" not in text:
        raise ParamsError(f"override '{text}': expected KEY=VALUE, e.g. model.M=3")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ParamsError(f"override '{text}': bad key '{key}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ParamsError(f"override '{text}': value is not valid YAML ({exc})") from None
    return key, value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """Return a deep copy of ``raw`` with ``section.key=value`` overrides applied.

    Like ``dvc exp run -S``, an override may only change a key that exists.
    """
    import copy

    out = copy.deepcopy(dict(raw))
    for text in overrides:
        key, value = parse_override(text)
        parts = key.split(".")
        node: Any = out
        for i, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node:
                raise ParamsError(f"override '{text}': unknown key '{'.'.join(parts[: i + 1])}'")
            node = node[part]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise ParamsError(f"override '{text}': unknown key '{key}'")
        node[parts[-1]] = value
    return out


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a params file with ``yaml.safe_load``; a clear error if it is missing or malformed."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            f"{path}: params file not found. Run from the project root or pass --params PATH."
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping of sections")
    return data


def load_section(
    path: str | Path, name: str, overrides: Sequence[str] = (), raw: Mapping[str, Any] | None = None
) -> Any:
    """Load one section of ``path`` into its dataclass (see :data:`SECTIONS`)."""
    if name not in SECTIONS:
        raise ParamsError(f"unknown params section '{name}' (known: {', '.join(SECTIONS)})")
    data = apply_overrides(raw if raw is not None else read_yaml(path), overrides)
    if name not in data:
        raise ParamsError(f"{path}: missing section '{name}'. Add it to {path}.")
    section = data[name]
    if not isinstance(section, Mapping):
        raise ParamsError(f"{path}: section '{name}' must be a mapping")
    if name in OVERLAYS:
        _unknown_keys(SECTIONS[name], section, name, str(path))
        under = load_section(path, OVERLAYS[name], raw=data)
        return dataclasses.replace(under, **_build_partial(SECTIONS[name], section, name, path))
    return _build(SECTIONS[name], section, name, str(path))


def _build_partial(cls: type, data: Mapping[str, Any], prefix: str, source: Any) -> dict:
    hints = get_type_hints(cls)
    return {k: _convert(v, hints[k], f"{prefix}.{k}", str(source)) for k, v in data.items()}


def load_params(
    path: str | Path, sections: Sequence[str], overrides: Sequence[str] = ()
) -> dict[str, Any]:
    """Load the named sections of ``path`` (with ``-S`` overrides) into their dataclasses.

    Unknown top-level sections are an error too, so a typo in a section name can't hide.
    Overrides of sections not requested are still checked against the file.
    """
    raw = apply_overrides(read_yaml(path), overrides)
    unknown = [k for k in raw if k not in SECTIONS]
    if unknown:
        raise ParamsError(
            f"{path}: unknown section '{unknown[0]}' (known: {', '.join(SECTIONS)}). "
            "Remove it or fix its spelling."
        )
    return {name: load_section(path, name, raw=raw) for name in sections}


def load_all(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Load and validate every section (used by tests and ``nrdfer`` sub-commands)."""
    return load_params(path, list(SECTIONS), overrides)


def to_dict(obj: Any) -> Any:
    """Plain-Python form of a params dataclass (tuples as lists), e.g. for checkpoints/JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def from_dict(cls: type[T], data: Mapping[str, Any], source: str = "<dict>") -> T:
    """Rebuild a section dataclass from :func:`to_dict` output (strict, like the file)."""
    name = next((k for k, v in SECTIONS.items() if v is cls), cls.__name__)
    return _build(cls, data, name, source)


__all__ = [
    "BaseParams",
    "DataParams",
    "FoldsParams",
    "IngestParams",
    "ShardsParams",
    "EvaluateParams",
    "ModelParams",
    "OVERLAYS",
    "ParamsError",
    "SECTIONS",
    "TrainParams",
    "apply_overrides",
    "from_dict",
    "load_all",
    "load_params",
    "load_section",
    "parse_override",
    "read_yaml",
    "to_dict",
]
