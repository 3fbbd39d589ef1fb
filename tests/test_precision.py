"""One precision parser and one meaning of int8 (= int8-static) in every command and API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import edgeae.runtime as rt
from edgeae.cli import cli
from edgeae.errors import BundleError, ConfigError
from edgeae.runtime.precision import ALIASES, PRECISIONS, parse_precisions, precision_name
from tests._bundles import digits_uint8, make_bundle

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", PRECISIONS)
def test_every_stored_name_is_itself(name):
    assert precision_name(name) == name
    assert precision_name(f"  {name} ") == name
    assert parse_precisions(name) == [name]


@pytest.mark.parametrize("alias, name", sorted(ALIASES.items()))
def test_every_alias(alias, name):
    assert (alias, name) == ("int8", "int8-static")  # the one alias; a new one needs its own docs
    assert precision_name(alias) == name
    assert parse_precisions(f"fp32,{alias}") == ["fp32", name]
    assert parse_precisions([alias, name, "fp16", alias]) == [name, "fp16"]  # order kept, no repeats


@pytest.mark.parametrize("value", ["fp64", "INT8", "int4", "int8-", "float32", "fp32;fp16", "int8_static"])
def test_every_unknown_name_is_refused(value):
    with pytest.raises(ConfigError, match=rf"^unknown precision {value!r}; choose from: fp32, fp16, "
                                          r"int8-dynamic, int8-static \(int8 = int8-static\)$"):
        parse_precisions(f"fp32,{value}")


@pytest.mark.parametrize("value, match", [
    ("", "no precision given"), (" , ,", "no precision given"), ([], "no precision given"),
    (None, "precisions must be comma-separated names or a list, got NoneType"),
    (8, "precisions must be comma-separated names or a list, got int"),
    (["fp32", 3], "precision must be a str, got int"),
])
def test_every_bad_value_is_refused(value, match):
    with pytest.raises(ConfigError, match=match):
        parse_precisions(value)


def test_empty_is_allowed_where_a_command_has_a_default():
    assert parse_precisions("", allow_empty=True) == []


def test_a_precision_the_bundle_lacks_names_what_it_has():
    have = ["fp32", "int8-dynamic"]
    assert parse_precisions("int8-dynamic,fp32", have) == ["int8-dynamic", "fp32"]
    with pytest.raises(BundleError, match=r"^precision 'int8' \(int8-static\) is not in bundle b; it has: fp32, "
                                          r"int8-dynamic \(re-export with --precision int8-static to add it\)$"):
        parse_precisions("fp32,int8", have, "b")
    with pytest.raises(BundleError, match="precision 'fp16' is not in bundle the bundle; it has: fp32, int8-dynamic"):
        parse_precisions(["fp16"], have)


def test_the_parser_is_in_the_torch_free_runtime():
    code = ("import sys, edgeae.runtime.precision; "
            "print(sorted(m for m in ('torch', 'onnx', 'click') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stderr


# -------------------------------------------------------------- every command and API follows it
@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two bundles: one with int8-static graphs, one with only int8-dynamic."""
    base = tmp_path_factory.mktemp("prec")
    static, _ = make_bundle(base / "static", precisions=("fp32", "int8-static"))
    dynamic, _ = make_bundle(base / "dynamic", precisions=("fp32", "int8-dynamic"))
    return static, dynamic


def test_runtime_load_int8_is_int8_static(bundles):
    static, dynamic = bundles
    assert rt.load(static, precision="int8").precision == "int8-static"
    with pytest.raises(BundleError, match=r"^precision 'int8' \(int8-static, onnx\) is not in bundle .*"
                                          r"available encoder precisions: fp32, int8-dynamic"):
        rt.load(dynamic, precision="int8")


def test_runtime_commands_take_int8(bundles, tmp_path):
    import numpy as np

    static, dynamic = bundles
    np.save(tmp_path / "x.npy", digits_uint8()[:5])
    r = CliRunner().invoke(cli, ["encode", str(static), str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npy"),
                                 "--precision", "int8"])
    assert r.exit_code == 0 and "[int8-static, " in r.output, r.output
    r = CliRunner().invoke(cli, ["encode", str(dynamic), str(tmp_path / "x.npy"), "-o", str(tmp_path / "d.npy"),
                                 "--precision", "int8"])
    assert r.exit_code == 1 and r.output.startswith(f"Error: precision 'int8' (int8-static, onnx) is not in bundle "
                                                    f"{dynamic}"), r.output
    assert "Traceback" not in r.output


def test_web_and_bench_take_int8(bundles, tmp_path):
    from edgeae.bench.harness import check_options
    from edgeae.web.site import build_site

    static, dynamic = bundles
    m = rt.read_manifest(static)
    assert check_options(m, static, ["int8"], ["encoder"], [1], [1], ["cpu"])[0] == ["int8-static"]
    with pytest.raises(BundleError, match=r"precision 'int8' \(int8-static\) is not in bundle .*it has: fp32, "
                                          r"int8-dynamic"):
        build_site(dynamic, tmp_path / "site", "fp32,int8")
    r = CliRunner().invoke(cli, ["bench", str(dynamic), "--precision", "int8", "--graph", "encoder"])
    assert r.exit_code == 1 and r.output.startswith("Error: precision 'int8' (int8-static) is not in bundle"), r.output


def test_codegen_int8_is_int8_static(bundles, tmp_path):
    pytest.importorskip("onnx")
    from edgeae.codegen import generate_c

    _, dynamic = bundles
    with pytest.raises(BundleError, match=rf"precision 'int8' \(int8-static\) is not in bundle {dynamic}; it has: "
                                          r"fp32, int8-dynamic"):
        generate_c(dynamic, tmp_path / "c", precisions="int8", verify=False)
    with pytest.raises(ConfigError, match="precision 'int8-dynamic' cannot be generated as C"):
        generate_c(dynamic, tmp_path / "c", precisions="int8-dynamic", verify=False)


def test_export_int8_is_int8_static():
    pytest.importorskip("torch")
    from edgeae.export.quantize import parse_precisions as export_precisions

    assert export_precisions("int8") == ["fp32", "int8-static"]  # fp32, the reference, always first
    assert export_precisions("fp16,int8,fp32") == ["fp32", "fp16", "int8-static"]
    assert export_precisions("") == ["fp32"]
    with pytest.raises(ConfigError, match="unknown precision 'int9'"):
        export_precisions("int9")
