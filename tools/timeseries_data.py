"""Real UCR/UEA time-series data sets without a run-time download: the `.ts` files that the
`aeon` wheel on PyPI bundles (BasicMotions: smartwatch accelerometer + gyroscope, 6 channels;
GunPoint; ItalyPowerDemand; ...), extracted into build/timeseries/<Name>/<Name>_{TRAIN,TEST}.ts.

Only the `.ts` files are kept: aeon is never installed nor imported. The wheel is fetched
with `pip download aeon==1.6.0 --no-deps` and checked against its SHA-256 before it is opened.
Used by `make timeseries-data` (part of `make test`); tests and benchmarks/timeseries_rd.py
find the files there and skip, saying why, where they are absent.

    python tools/timeseries_data.py [--out build/timeseries]

Exits non-zero, saying why, when PyPI is unavailable.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aeon-1.6.0-py3-none-any.whl"
WHEEL_SHA256 = "d05227086706f80111ac5fee8de4d5d3115bb3bcfd1c786c8629393055816409"
PREFIX = "aeon/datasets/data/"  # where the wheel keeps its data sets, one folder per data set
STAMP = ".ready"  # written last, naming the wheel: an interrupted extraction is redone


def _download(where: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "aeon==1.6.0", "--no-deps", "--only-binary=:all:",
           "-q", "-d", str(where)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    wheel = where / WHEEL
    if run.returncode != 0 or not wheel.is_file():
        raise SystemExit(f"timeseries_data: pip download aeon==1.6.0 failed: {run.stderr.strip()[-400:]}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"timeseries_data: {WHEEL} has SHA-256 {digest}, expected {WHEEL_SHA256}")
    return wheel


def _extract(wheel: Path, out: Path) -> list[Path]:
    """Copy every ``.ts`` member under the wheel's data folder to ``out/<Name>/<file>``."""
    written = []
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            if not (name.startswith(PREFIX) and name.endswith(".ts")):
                continue
            parts = Path(name[len(PREFIX):]).parts
            if len(parts) != 2 or any(p in ("", ".", "..") for p in parts):
                continue  # only <Name>/<file>.ts: nothing can land outside out/
            dest = out / parts[0] / parts[1]
            dest.parent.mkdir(parents=True, exist_ok=True)
            tmp = dest.with_suffix(".ts.part")
            tmp.write_bytes(zf.read(info))
            tmp.replace(dest)
            written.append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "build" / "timeseries"))
    out = Path(ap.parse_args(argv).out)
    stamp = out / STAMP
    if stamp.is_file() and stamp.read_text().strip() == WHEEL_SHA256:
        print(f"timeseries_data: ready: {out}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        files = _extract(_download(Path(tmp)), out)
    if not files:
        raise SystemExit(f"timeseries_data: {WHEEL} holds no .ts files under {PREFIX}")
    stamp.write_text(WHEEL_SHA256 + "\n")
    print(f"timeseries_data: {len(files)} .ts files in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
