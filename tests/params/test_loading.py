"""params.yaml <-> typed dataclasses: strict loading, clear errors, -S overrides."""

from __future__ import annotations

import dataclasses
import json
from typing import Literal

import pytest
import yaml

from nrdfer import params as P
from tests.conftest import ROOT


def write(tmp_path, data) -> str:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def project_raw() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_project_params_load_every_section():
    loaded = P.load_all(ROOT / "params.yaml")
    assert set(loaded) == set(P.SECTIONS)
    for name, obj in loaded.items():
        assert isinstance(obj, P.SECTIONS[name])
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(obj, dataclasses.fields(obj)[0].name, None)


def test_every_section_in_file_and_schema():
    assert set(project_raw()) == set(P.SECTIONS)


def test_unknown_key_names_key_and_file(tmp_path):
    raw = project_raw()
    raw["base"]["sede"] = 1
    path = write(tmp_path, raw)
    with pytest.raises(P.ParamsError, match=r"params\.yaml.*unknown key 'base\.sede'"):
        P.load_params(path, ["base"])


def test_missing_key_names_key_and_file(tmp_path):
    raw = project_raw()
    del raw["base"]["seed"]
    path = write(tmp_path, raw)
    with pytest.raises(P.ParamsError, match=r"params\.yaml.*missing key 'base\.seed'"):
        P.load_params(path, ["base"])


def test_wrong_type_names_key_and_file(tmp_path):
    raw = project_raw()
    raw["base"]["seed"] = "twelve"
    path = write(tmp_path, raw)
    with pytest.raises(
        P.ParamsError, match=r"params\.yaml: base\.seed = \"twelve\": must be an int"
    ):
        P.load_params(path, ["base"])


def test_bool_is_not_an_int(tmp_path):
    raw = project_raw()
    raw["base"]["seed"] = True
    with pytest.raises(P.ParamsError, match="base.seed"):
        P.load_params(write(tmp_path, raw), ["base"])


def test_unknown_section(tmp_path):
    raw = project_raw()
    raw["modle"] = {"M": 2}
    with pytest.raises(P.ParamsError, match="unknown section 'modle'"):
        P.load_params(write(tmp_path, raw), ["base"])


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(P.ParamsError, match="params file not found"):
        P.load_params(tmp_path / "nope.yaml", ["base"])


def test_malformed_yaml_is_clear(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("base: [unclosed\n")
    with pytest.raises(P.ParamsError, match="not valid YAML"):
        P.load_params(path, ["base"])


def test_overrides_use_dvc_syntax(tmp_path):
    path = write(tmp_path, project_raw())
    loaded = P.load_params(path, ["base"], ["base.seed=7", "base.device=cpu"])
    assert loaded["base"].seed == 7 and loaded["base"].device == "cpu"


def test_override_of_unknown_key_fails(tmp_path):
    path = write(tmp_path, project_raw())
    with pytest.raises(P.ParamsError, match="unknown key 'base.nope'"):
        P.load_params(path, ["base"], ["base.nope=1"])
    with pytest.raises(P.ParamsError, match="expected KEY=VALUE"):
        P.load_params(path, ["base"], ["base.seed"])


def test_override_wrong_type_fails(tmp_path):
    path = write(tmp_path, project_raw())
    with pytest.raises(
        P.ParamsError, match=r'^-S base.seed=abc: base.seed = "abc": must be an int'
    ):
        P.load_params(path, ["base"], ["base.seed=abc"])


def test_rules_describe_what_they_allow():
    @P.frozen
    class S:
        a: P.Float(0, 1, gt=True)
        b: P.Seq(P.Int(1, 9))
        c: Literal["x", "y"]
        d: P.Pair(P.Int(2))
        e: P.Seq(P.Int(0, 3), length=2)

    ok = P.from_dict(S, {"a": 1, "b": [1, 2], "c": "x", "d": [2, 2], "e": [0, 0]})
    assert ok.a == 1.0 and ok.b == (1, 2) and ok.d == (2, 2)  # lists become tuples
    for key, value, allowed in [
        ("a", 0, "a number in (0, 1]"),
        ("b", [1, 1], "a list of 1 or more distinct values, each an integer in [1, 9]"),
        ("c", "z", "one of x, y"),
        ("d", [3, 2], "a list [min, max] with min <= max, each an integer >= 2"),
        ("e", [0, 4], "a list of 2 values, each an integer in [0, 3]"),
    ]:
        data = {"a": 1, "b": [1], "c": "x", "d": [2, 3], "e": [0, 0]} | {key: value}
        with pytest.raises(P.ParamsError) as err:
            P.from_dict(S, data, source="f.pt")
        assert str(err.value).startswith(f"f.pt: S.{key} = {json.dumps(value)}: must be {allowed};")


def test_model_names_are_the_registered_ones():
    from nrdfer.models.registry import available_models

    assert sorted(P.MODELS) == available_models()


def test_roundtrip_to_from_dict():
    loaded = P.load_all(ROOT / "params.yaml")
    for name, obj in loaded.items():
        assert P.from_dict(P.SECTIONS[name], P.to_dict(obj)) == obj


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("data.V=3", ["model.frames = 16", "data.U x data.V = 8 x 3 = 24", "-S data.V=3"]),
        ("model.frames=8", ["model.frames = 8", "data.U x data.V", "-S model.frames=8"]),
        ("data.size=64", ["model.image_size = 48", "data.size = 64", "-S data.size=64"]),
    ],
)
def test_clip_shape_is_cross_checked(override, named):
    """The model's frame count and input size must be the clips data makes: one line naming
    both keys and where the value came from, before any work (nrdfer params too)."""
    with pytest.raises(P.ParamsError) as err:
        P.load_all(ROOT / "params.yaml", [override])
    assert all(part in str(err.value) for part in named), str(err.value)
    consistent = ["data.size=64", "model.image_size=64", "data.V=1", "model.frames=8"]
    P.load_all(ROOT / "params.yaml", consistent)  # changed together: fine


def test_nrdfer_params_refuses_a_clip_shape_mismatch(capsys):
    from nrdfer.cli import main

    assert main(["params", "--params", str(ROOT / "params.yaml"), "-S", "data.U=4"]) == 2
    err = capsys.readouterr().err
    assert "model.frames" in err and "data.U" in err and "Traceback" not in err


def test_model_file_is_checked_against_data(tmp_path):
    """Evaluating a model file with data params that make other clips stops before any work."""
    model = P.load_section(ROOT / "params.yaml", "model")
    data = P.load_section(ROOT / "params.yaml", "data", ["data.size=64"])
    with pytest.raises(P.ParamsError, match=r"model.pt\)"):
        P.check_clip_shape(model, data, lambda key: "model.pt" if key[0] == "m" else "")
