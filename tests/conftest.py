"""Shared fixtures: one tiny trained run per model kind, built once per session on demand."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"

# model kind -> train() keyword arguments (digits, 8x8; one epoch keeps the fixtures fast)
_RUNS = {
    "mlp": {"model": "mlp"},
    "conv": {"model": "conv", "channels": (8, 16)},
    "vae": {"model": "vae"},
    "denoising": {"model": "mlp", "noise": "gaussian:0.2"},
}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """``trained_run(kind)`` -> run folder of a 1-epoch digits model; trained once per kind."""
    from edgeae.train import train

    cache: dict[str, Path] = {}

    def make(kind: str) -> Path:
        if kind not in cache:
            out = tmp_path_factory.mktemp(f"run-{kind}")
            train("digits", out=out, epochs=1, overwrite=True, **_RUNS[kind])
            cache[kind] = out
        return cache[kind]

    return make


@pytest.fixture(scope="session")
def mlp_run(trained_run) -> Path:
    return trained_run("mlp")


@pytest.fixture(scope="session")
def mlp_bundle(mlp_run, tmp_path_factory) -> Path:
    """An fp32 + int8-dynamic bundle of the MLP run, with raw-I/O graphs."""
    from edgeae.export import export

    out = tmp_path_factory.mktemp("bundles") / "mlp"
    export(mlp_run, out, precisions="fp32,int8-dynamic", raw_io=True, ort=True, fixed_batch=4,
           latency_repeats=3)
    return out


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium (the system one, driven by Playwright) for one test module's pages."""
    from edgeae.web.headless import browser

    with browser() as b:
        yield b


@pytest.fixture
def notes():
    """The messages the library logs to ``edgeae`` during the test (the CLI prints them on stderr)."""
    got: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: got.append(record.getMessage())
    log = logging.getLogger("edgeae")
    log.addHandler(handler)
    yield got
    log.removeHandler(handler)
