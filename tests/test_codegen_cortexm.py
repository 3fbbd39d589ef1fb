"""Generated C on emulated Cortex-M4F / M3 / M0 (QEMU): same outputs as the host, memory as predicted."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("onnx")

from edgeae.codegen import generate_c  # noqa: E402
from edgeae.codegen.cortexm import run_generated  # noqa: E402
from edgeae.codegen.toolchain import toolchain_problem  # noqa: E402
from tests._bundles import make_bundle  # noqa: E402
from tests._codegen_bundles import add_int8_static, conv_bundle  # noqa: E402

_PROBLEM = toolchain_problem() or (None if shutil.which("gcc") else "gcc is not installed")
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=f"Cortex-M toolchain missing: {_PROBLEM}; "
                                "`make cortexm-tools` installs it where apt-get works")


def _check(results):
    for r in results:
        # int8: the same bits as the host build; fp32: within 1e-5 (newlib and glibc expf may differ by an ulp)
        assert r.max_abs_vs_host <= (0.0 if "int8" in r.unit else 1e-5), r
        assert r.instructions > 0 and r.samples > 0
        # RAM: the static arena is the object's only bss (fp32 storage rounds up to whole floats)
        assert r.arena_bytes <= r.bss_bytes <= r.arena_bytes + 4
        # flash: the weights plus code; the header's weight figure is exact for const data
        assert r.weight_bytes <= r.flash_bytes <= r.weight_bytes + 8192
        assert r.ram_bytes == r.bss_bytes + r.stack_bytes and 0 < r.stack_bytes < 4096  # painted and scanned


@pytest.fixture(scope="module")
def pca(tmp_path_factory):
    folder, _ = make_bundle(tmp_path_factory.mktemp("pca") / "b", raw_io=True, precisions=("fp32",))
    return add_int8_static(folder)


def test_pca_bundle_on_cortex_m(pca, tmp_path):
    folder = pca
    generate_c(folder, tmp_path / "c")
    results = run_generated(folder, tmp_path / "c", samples=4)
    assert {(r.unit, r.target) for r in results} >= {("model_encoder_int8", "cortex-m0"), ("model_encoder_fp32", "cortex-m4f")}
    _check(results)


@pytest.mark.slow
def test_conv_bundle_on_cortex_m(tmp_path):
    folder = add_int8_static(conv_bundle(tmp_path / "b"))
    generate_c(folder, tmp_path / "c")
    _check(run_generated(folder, tmp_path / "c", samples=4))


def test_dsp_path_compiled_for_m4_only(pca, tmp_path):
    """The int8 row kernel uses SMLAD where the core has the DSP extension (Cortex-M4), the
    portable loops on Cortex-M3 / M0; -D<UNIT>_NO_DSP forces the portable loops."""
    import subprocess

    from edgeae.codegen.toolchain import TARGETS

    generate_c(pca, tmp_path / "c", precisions="int8-static", verify=False)
    src = tmp_path / "c" / "model_encoder_int8.c"

    def asm(target: str, *extra: str) -> str:
        cmd = ["arm-none-eabi-gcc", *TARGETS[target][0], "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
               *extra, "-S", str(src), "-o", "-"]
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    assert "smlad" in asm("cortex-m4f")
    assert "smlad" not in asm("cortex-m4f", "-DMODEL_ENCODER_INT8_NO_DSP")
    assert "smlad" not in asm("cortex-m3")
