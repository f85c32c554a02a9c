"""Typed, frozen parameters loaded from ``params.yaml``, the only YAML reader (params.yaml says
what each value means).

Each section of params.yaml is a frozen dataclass (``sections.py``) whose fields carry their
type and the values they allow (``rules.py``: ``Int(1, 32)`` is an integer in [1, 32]), checked
whenever a section is built, ``dataclasses.replace`` included. A missing, unknown or
twice-written key, a wrong type or a value out of range raises :class:`ParamsError`: one line
with the key, the value, what is allowed and where it came from (the file, a ``-S`` override, a
model file). ``train_afew`` is an overlay (:data:`OVERLAYS`): it lists only the keys that
differ from ``train``. Overrides use the syntax of ``dvc exp run -S``: ``section.key=value``, the value
read as YAML (``train.lr=3e-4``). Only ``stages/`` and ``cli.py`` call the loaders
(``loading.py``); the library receives the dataclasses.
"""

from nrdfer.params.loading import (
    MAX_YAML_BYTES,
    MAX_YAML_DEPTH,
    apply_overrides,
    check_clip_shape,
    from_dict,
    load_all,
    load_params,
    load_section,
    parse_override,
    parse_yaml,
    read_yaml,
    read_yaml_text,
    to_dict,
)
from nrdfer.params.rules import Float, Int, Pair, ParamsError, Rule, Seq, Text, allowed, describe
from nrdfer.params.sections import (
    MODELS,
    OVERLAYS,
    SECTIONS,
    AblationParams,
    BaseParams,
    CompareParams,
    DataParams,
    DetectAlignParams,
    EnhanceParams,
    EvaluateParams,
    FoldsParams,
    IngestParams,
    ModelParams,
    NoiseParams,
    ReportParams,
    ShardsParams,
    SourceParams,
    SynthParams,
    TrainParams,
    frozen,
)

__all__ = [
    "MAX_YAML_BYTES",
    "MAX_YAML_DEPTH",
    "MODELS",
    "OVERLAYS",
    "SECTIONS",
    "AblationParams",
    "BaseParams",
    "CompareParams",
    "DataParams",
    "DetectAlignParams",
    "EnhanceParams",
    "EvaluateParams",
    "Float",
    "FoldsParams",
    "IngestParams",
    "Int",
    "ModelParams",
    "NoiseParams",
    "Pair",
    "ParamsError",
    "ReportParams",
    "Rule",
    "Seq",
    "ShardsParams",
    "SourceParams",
    "SynthParams",
    "Text",
    "TrainParams",
    "allowed",
    "apply_overrides",
    "check_clip_shape",
    "describe",
    "frozen",
    "from_dict",
    "load_all",
    "load_params",
    "load_section",
    "parse_override",
    "parse_yaml",
    "read_yaml",
    "read_yaml_text",
    "to_dict",
]
