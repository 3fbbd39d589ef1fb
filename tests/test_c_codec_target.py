"""The C codec on Cortex-M4F and Cortex-M3 under qemu-system-arm: the host's bytes, measured cost."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from edgeae.codegen.codec import CODEC_FILES, TEMPLATE_DIR, codec_sources
from edgeae.codegen.cortexm_codec import CODEC_TARGETS, run_codec_target
from edgeae.runtime import stream as S
from edgeae.runtime.codec import LatentCodec

GOLDEN = Path(__file__).parent / "golden"
SHA = "0123456789abcdef" * 4
_MISSING = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm") if not shutil.which(t)]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"{', '.join(_MISSING)} not on PATH; install gcc-arm-none-eabi, libnewlib-arm-none-eabi "
    "and qemu-system-arm (`make c-tools` on Debian/Ubuntu)",
)


@pytest.mark.parametrize("cpu", sorted(CODEC_TARGETS))
def test_target_writes_the_host_bytes(tmp_path, cpu):
    """Golden tables (5 bits, D = 8) and 8-bit tables at 20-bit precision (D = 16): every
    one-sample stream and a 40-sample stream equal Python's; the target decodes its own."""
    golden = LatentCodec.from_dict(json.loads((GOLDEN / "codec_v1.json").read_text()))
    rng = np.random.default_rng(3)
    train = (rng.standard_normal((2000, 16)) * np.linspace(3, 0.2, 16)).astype(np.float32)
    wide = LatentCodec.fit(train, 8, precision=20)
    cases = [(golden, np.load(GOLDEN / "codes_v1.npy")), (wide, train[-12:])]
    for k, (codec, codes) in enumerate(cases):
        folder = tmp_path / f"c{k}"
        folder.mkdir()
        mid = codec.model_id(SHA)
        h, c = codec_sources([(codec, mid)], "t")
        (folder / "t_codec.h").write_text(h)
        (folder / "t_codec.c").write_text(c)
        for name in CODEC_FILES:
            shutil.copyfile(TEMPLATE_DIR / name, folder / name)
        r = run_codec_target(folder, "t", codes, cpu)
        assert r["streams"] == [S.compress_codes(codec, mid, codes[i : i + 1]) for i in range(len(codes))]
        assert r["multi"] == S.compress_codes(codec, mid, codes)
        assert r["bytes_per_sample"] == np.mean([len(s) for s in r["streams"]])
        assert 100 < r["instructions_per_sample"] < 10_000_000 and r["instructions_resolution"] <= 40
        assert r["ram_bytes"] == 0 and 0 < r["stack_bytes"] < 4096  # no static RAM; stack only
        assert 1000 < r["flash_bytes"]["eae_codec-" + cpu] < 20_000
