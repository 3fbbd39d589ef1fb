"""Signal files through the data layer and the CLI: .ts cases, (N, C, T) arrays with --signal,
(T, C) recordings cut with --window / --hop; config.json re-reads them on export and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeae.cli import cli
from edgeae.config import DataConfig
from edgeae.data import (
    SignalSpec,
    load_array_input,
    load_dataset,
    open_source,
    open_training_source,
)
from edgeae.data import signals as signals_module
from edgeae.data.signals import channel_normalization, open_signals, spec_for_model
from edgeae.data.tsfile import fit_channel_normalization, read_ts, window_series
from edgeae.errors import ConfigError, DataError

TIMESERIES = Path(__file__).resolve().parents[1] / "build" / "timeseries"  # `make timeseries-data`
BASIC = TIMESERIES / "BasicMotions"
_NO_DATA = f"no BasicMotions .ts files in {BASIC}: run `make timeseries-data` (needs PyPI)"

_TS = """@problemName tiny
@timeStamps false
@univariate false
@dimensions 2
@equalLength true
@seriesLength 12
@classLabel true up down
@data
{a}:{b}:up
{b}:{a}:down
{a}:{a}:up
"""


def _recording(t: int = 600, seed: int = 0) -> np.ndarray:
    """A (T, 3) recording: three sensor axes on different scales, with noise."""
    rng = np.random.default_rng(seed)
    s = np.arange(t) / 25.0
    x = np.stack([np.sin(s), 20 * np.cos(0.5 * s) + 3, 0.05 * np.sin(2 * s) - 1], axis=1)
    return (x + rng.normal(0, 0.02, x.shape)).astype(np.float32)


def _write_csv(path: Path, rec: np.ndarray, header: bool = True) -> Path:
    lines = (["ax,ay,az"] if header else []) + [",".join(f"{v:.7g}" for v in row) for row in rec]
    path.write_text("\n".join(lines) + "\n")
    return path


def _tiny_ts(path: Path) -> Path:
    a = ",".join(str(v) for v in range(12))
    b = ",".join(str(-2 * v) for v in range(12))
    path.write_text(_TS.format(a=a, b=b))
    return path


def _run(*args) -> tuple[int, str]:
    res = CliRunner().invoke(cli, [str(a) for a in args])
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.output


# --- the data layer ----------------------------------------------------------------------


def test_ts_file_is_a_data_format_with_labels(tmp_path):
    p = _tiny_ts(tmp_path / "tiny.ts")
    ds = load_dataset(p)
    assert ds.format == "ts" and not ds.is_image and ds.x.shape == (3, 2, 12) and ds.x.dtype == np.float32
    assert ds.labels.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(ds.x, read_ts(p).x)
    cut = load_dataset(p, signal=SignalSpec(window=5, hop=3))  # 3 windows per case, labels repeated
    np.testing.assert_array_equal(cut.x, window_series(read_ts(p).x, 5, 3))
    assert cut.labels.tolist() == [0, 0, 0, 1, 1, 1, 0, 0, 0]
    src, fmt, is_image = open_training_source(p)
    assert fmt == "ts" and not is_image and src.shape == (3, 2, 12)


@pytest.mark.parametrize("name", ["rec.csv", "rec_noheader.csv", "rec.npy", "rec64.npy", "rec.npz"])
def test_recordings_cut_into_windows_read_like_window_series(tmp_path, name):
    rec = _recording()
    p = tmp_path / name
    if name == "rec.csv":
        _write_csv(p, rec)
    elif name == "rec_noheader.csv":
        _write_csv(p, rec, header=False)
    elif name == "rec64.npy":
        np.save(p, rec.astype(np.float64))
    elif name == "rec.npz":
        np.savez(p, x=rec)
    else:
        np.save(p, rec)
    want = window_series(rec, 50, 20)  # (28, 3, 50)
    spec = SignalSpec(window=50, hop=20)
    src, fmt, _ = open_training_source(p, signal=spec)
    assert src.shape == want.shape and src.dtype == "float32"
    np.testing.assert_allclose(src.read(0, len(src)), want, rtol=1e-6)
    np.testing.assert_allclose(src.read(5, 9), want[5:14], rtol=1e-6)  # a block reads like the whole
    np.testing.assert_allclose(src.take(np.array([0, 7, 8, 27])), want[[0, 7, 8, 27]], rtol=1e-6)
    np.testing.assert_allclose(load_array_input(p, (3, 50), signal=spec), want, rtol=1e-6)
    blocks = np.concatenate([b for _, b in open_source(p, (3, 50), signal=spec).blocks(4)])
    np.testing.assert_allclose(blocks, want, rtol=1e-6)


def test_one_channel_recording_and_cases_per_case(tmp_path):
    rec = _recording()[:, 0]
    np.save(tmp_path / "one.npy", rec)  # (T,): one channel
    src = open_signals(tmp_path / "one.npy", "npy", SignalSpec(window=40))
    np.testing.assert_array_equal(src.read(0, len(src)), window_series(rec[:, None], 40))
    cases = _recording(300).T.reshape(3, 3, 100).transpose(1, 0, 2).copy()  # (3 cases, 3 channels, 100)
    np.save(tmp_path / "cases.npy", cases)
    src = open_signals(tmp_path / "cases.npy", "npy", SignalSpec(window=30, hop=25))
    np.testing.assert_array_equal(src.read(0, len(src)), window_series(cases, 30, 25))  # none straddles two cases
    np.testing.assert_array_equal(src.read(2, 3), window_series(cases, 30, 25)[2:5])


def test_three_dimensional_npy_is_images_unless_signal_says_otherwise(tmp_path):
    x = np.random.default_rng(0).normal(size=(5, 3, 40)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert load_dataset(tmp_path / "x.npy").x.shape == (5, 1, 3, 40)  # grayscale images (N, H, W)
    ds = load_dataset(tmp_path / "x.npy", signal=SignalSpec(signal=True))
    assert ds.x.shape == (5, 3, 40) and not ds.is_image
    np.save(tmp_path / "w.npy", x[:, 0])  # (N, T) with --signal: windows of one channel
    assert load_dataset(tmp_path / "w.npy", signal=SignalSpec(signal=True)).x.shape == (5, 1, 40)
    assert load_dataset(tmp_path / "w.npy").x.shape == (5, 40)  # without: vectors (the MLP path)
    _write_csv(tmp_path / "rows.csv", x[:, 0], header=False)
    assert load_dataset(tmp_path / "rows.csv").x.shape == (5, 40)  # CSV: one vector per row


def test_channel_normalization_streams_like_the_whole_fit(tmp_path, monkeypatch):
    rec = _recording(2000)
    np.save(tmp_path / "rec.npy", rec)
    src = open_signals(tmp_path / "rec.npy", "npy", SignalSpec(window=40, hop=10))
    idx = np.arange(0, len(src), 3)
    whole = fit_channel_normalization(src.take(idx))
    assert channel_normalization(src, idx) == whole
    monkeypatch.setattr(signals_module, "_FIT_BYTES", 8 * 3 * 40 * 7)  # 7 windows per block
    streamed = channel_normalization(src, idx)
    np.testing.assert_allclose(streamed.offset, whole.offset, rtol=1e-10)
    np.testing.assert_allclose(streamed.scale, whole.scale, rtol=1e-10)


def _nan_recording(tmp_path: Path) -> Path:
    rec = _recording().astype(np.float64)
    rec[123, 1] = np.nan
    np.save(tmp_path / "nan.npy", rec)
    return tmp_path / "nan.npy"


@pytest.mark.parametrize("make, spec, message", [
    (lambda d: _write_csv(d / "r.csv", _recording(100)), {"window": 101},
     r"a window of 101 steps is longer than the recording \(100 steps\); give --window 100 or less"),
    (lambda d: _tiny_ts(d / "t.ts"), {"window": 13}, r"longer than each case \(12 steps\)"),
    (lambda d: _nan_recording(d), {"window": 50}, r"NaN.* \(the first at time step 124\)"),
    (lambda d: np.save(d / "i.npy", np.zeros((2, 3, 4, 5), np.float32)) or d / "i.npy", {"window": 2},
     r"shape \(2, 3, 4, 5\); --window cuts a \(T, C\) recording or \(N, C, T\) cases"),
    (lambda d: np.save(d / "e.npy", np.zeros((0, 3, 5), np.float32)) or d / "e.npy", {"signal": True},
     r"holds no samples \(shape \(0, 3, 5\)\)"),
    (lambda d: np.save(d / "s.npy", np.array([["a", "b"]])) or d / "s.npy", {"window": 1},
     r"holds <U1 values; give numeric signals"),
    (lambda d: np.save(d / "v.npy", np.zeros(8, np.float32)) or d / "v.npy", {"signal": True},
     r"signal windows are \(N, C, T\), or \(N, T\) for one channel"),
])
def test_refusals_name_the_problem(tmp_path, make, spec, message):
    path = make(tmp_path)
    with pytest.raises(DataError, match=message):
        load_dataset(path, signal=SignalSpec(**spec))


@pytest.mark.parametrize("kwargs, message", [
    ({"window": 0}, r"window length \(--window\) must be a positive whole number of time steps, got 0"),
    ({"window": 10, "hop": -1}, r"hop \(--hop\) must be a positive whole number of time steps, got -1"),
    ({"window": 2.5}, "got 2.5"),
    ({"hop": 3}, r"a hop \(--hop\) needs a window length"),
])
def test_spec_refusals(kwargs, message):
    with pytest.raises(DataError, match=message):
        SignalSpec(**kwargs)


def test_spec_for_a_trained_model():
    assert spec_for_model(None, None, (3, 50)) is None
    assert spec_for_model(None, 10, (3, 50)) == SignalSpec(window=50, hop=10)
    with pytest.raises(DataError, match="this model takes windows of 50 steps"):
        spec_for_model(40, None, (3, 50))
    with pytest.raises(DataError, match=r"not \(C, T\) signal windows"):
        spec_for_model(None, 4, (1, 8, 8))


def test_longer_cases_than_the_model_name_the_window_to_cut(tmp_path):
    """A .ts whose cases are longer than the model's windows is refused with the --window to give."""
    ts = _tiny_ts(tmp_path / "t.ts")  # three cases of (2, 12)
    with pytest.raises(DataError, match="cut each case into the model's windows with --window 4"):
        load_array_input(ts, (2, 4))
    with pytest.raises(DataError, match="give data with the shape the model was trained on"):
        load_array_input(ts, (3, 4))  # another channel count: no window fixes it
    assert load_array_input(ts, (2, 4), signal=spec_for_model(None, 4, (2, 4))).shape == (9, 2, 4)


def test_signal_options_only_for_signal_files(tmp_path):
    with pytest.raises(DataError, match=r"digits holds images; signals .* are read from .ts, .npy/.npz or .csv"):
        load_dataset("digits", signal=SignalSpec(signal=True))
    _write_csv(tmp_path / "r.csv", _recording(100))
    with pytest.raises(DataError, match="--resize applies to images only"):
        load_dataset(tmp_path / "r.csv", resize=(8, 8), signal=SignalSpec(window=10))
    with pytest.raises(ConfigError, match="data hop needs a window length"):
        DataConfig(hop=4)
    with pytest.raises(ConfigError, match="data window must be a positive"):
        DataConfig(window=0)


# --- the CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--window", "5000"], "a window of 5000 steps is longer than the recording (600 steps)"),
    (["--window", "64", "--hop", "0"], "window hop (--hop) must be a positive whole number of time steps, got 0"),
    (["--hop", "8"], "a hop (--hop) needs a window length (--window LENGTH)"),
    (["--window", "64", "--resize", "8x8"], "--resize applies to images only"),
])
def test_cli_train_refusals(tmp_path, args, message):
    csv = _write_csv(tmp_path / "walk.csv", _recording())
    code, out = _run("train", "--data", csv, "--model", "conv1d", "--epochs", "1", "--out", tmp_path / "run", *args)
    assert code == 1 and out.startswith("Error: ") and message in out and "Traceback" not in out
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_cli_bad_ts_file_and_images_as_conv1d(tmp_path):
    (tmp_path / "bad.ts").write_text("@dimensions 2\n@data\n1,2,3:4,5\n")
    code, out = _run("train", "--data", tmp_path / "bad.ts", "--model", "conv1d", "--out", tmp_path / "r")
    assert code == 1 and "Error: " in out and "line 3, dimension 2: 2 values" in out
    np.save(tmp_path / "cases.npy", np.zeros((8, 3, 32), np.float32))
    code, out = _run("train", "--data", tmp_path / "cases.npy", "--model", "conv1d", "--out", tmp_path / "r2")
    assert code == 1 and "unless --signal says it holds signals" in out


def test_run_records_the_windowing_so_export_and_resume_read_the_same_windows(tmp_path):
    """The API: a run from a (T, C) .npy recording; export's data loading reads the run's own
    windows from config.json alone (the same held-out windows training validated on)."""
    from edgeae.export.source import Source
    from edgeae.rows import prepare_data
    from edgeae.train import train

    rec = _recording(800)
    np.save(tmp_path / "rec.npy", rec)
    r = train(str(tmp_path / "rec.npy"), model="conv1d", window=40, hop=20, out=tmp_path / "run", epochs=1,
              channels=(8,), code_size=4, batch_size=8, device="cpu")
    cfg = r.config
    assert (cfg.data.signal, cfg.data.window, cfg.data.hop, cfg.data.format) == (True, 40, 20, "npy")
    windows = window_series(rec, 40, 20)  # (39, 3, 40)
    split, _ = prepare_data(cfg.data.source, cfg.data, cfg.normalization)
    assert len(split.train) + len(split.val) == len(windows)
    np.testing.assert_array_equal(split.val_raw, windows[split.val.indices])
    train_part = windows[split.train.indices]
    want = fit_channel_normalization(train_part)  # fitted on the training split only
    np.testing.assert_allclose(cfg.normalization.offset, want.offset, rtol=1e-6)
    np.testing.assert_allclose(cfg.normalization.scale, want.scale, rtol=1e-6)
    src = Source.from_run(run_dir=tmp_path / "run", codec=False)  # no data= : config.json says where and how
    assert src.val_raw.shape == (len(split.val), 3, 40)
    np.testing.assert_array_equal(src.val_raw, windows[split.val.indices])
    with pytest.raises(ConfigError, match="cut arrays in memory with edgeae.data.tsfile.window_series"):
        train(windows, model="conv1d", window=10, out=tmp_path / "r2", epochs=1)


@pytest.mark.slow
def test_windowed_csv_trains_exports_and_compresses_without_data_arguments(tmp_path):
    """A run trained from a recording cut into windows exports with no data argument and its
    bundle compresses the recording cut the same way."""
    csv = _write_csv(tmp_path / "walk.csv", _recording())
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    code, out = _run("train", "--data", csv, "--window", "64", "--hop", "32", "--model", "conv1d", "--channels",
                     "8,8", "--code-size", "6", "--epochs", "1", "--batch-size", "8", "--device", "cpu",
                     "--out", run)
    assert code == 0, out
    data = json.loads((run / "config.json").read_text())["data"]
    assert (data["source"], data["format"], data["signal"], data["window"], data["hop"]) == (str(csv), "csv", True,
                                                                                             64, 32)
    assert data["sample_shape"] == [3, 64] and data["n_train"] + data["n_val"] == 17
    norm = json.loads((run / "config.json").read_text())["normalization"]
    assert norm["mode"] == "standardize" and len(set(norm["offset"][:64])) == 1  # one mean per channel
    code, out = _run("export", run, "-o", bundle, "--codec-bits", "4")
    assert code == 0, out
    code, out = _run("compress", bundle, csv, "--hop", "64", "-o", tmp_path / "w.eae")
    assert code == 0 and "Compressed 9 samples" in out, out
    bench = ("bench", bundle, "--data", csv, "--graph", "encoder", "--batch", "1", "--threads", "1", "--duration",
             "0.02", "--rounds", "6", "--no-check", "--no-ceiling", "--no-bare")
    code, out = _run(*bench, "--window", "64", "--hop", "32")
    assert code == 0 and "walk.csv (last 17 samples)" in out, out
    code, out = _run(*bench)
    assert code == 1 and "with --window 64" in out, out
    code, out = _run(*bench[:2], "--hop", "32")
    assert code == 2 and "give --data FILE" in out, out
    code, out = _run("decompress", bundle, tmp_path / "w.eae", "-o", tmp_path / "back.npy")
    assert code == 0, out
    assert np.load(tmp_path / "back.npy").shape == (9, 3, 64)
    code, out = _run("compress", bundle, csv, "-o", tmp_path / "x.eae")  # the steps alone do not fit the model
    assert code == 1 and "cut a (T, 3) recording into the model's windows with --window 64" in out
    code, out = _run("encode", bundle, csv, "--window", "32", "-o", tmp_path / "c.npy")
    assert code == 1 and "this model takes windows of 64 steps" in out
    _write_csv(csv, _recording(500))  # the run's data changed: export refuses rather than mis-split
    code, out = _run("export", run, "-o", tmp_path / "b2")
    assert code == 1 and "but the run was trained on 17 samples" in out


@pytest.mark.slow
@pytest.mark.skipif(not BASIC.is_dir(), reason=_NO_DATA)
def test_basicmotions_cli_end_to_end(tmp_path):
    """Train on the .ts file, export with no data argument, compress / decompress the TEST
    file, resume; the round trip matches the runtime's own decoding."""
    import edgeae.runtime as rt
    from edgeae.runtime.compress import decompress

    train_ts, test_ts = BASIC / "BasicMotions_TRAIN.ts", BASIC / "BasicMotions_TEST.ts"
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    code, out = _run("train", "--data", train_ts, "--model", "conv1d", "--code-size", "16", "--epochs", "6",
                     "--batch-size", "4", "--lr", "3e-3", "--device", "cpu", "--out", run)
    assert code == 0 and "Trained conv1d" in out, out
    cfg = json.loads((run / "config.json").read_text())["data"]
    assert cfg["format"] == "ts" and cfg["signal"] and cfg["window"] is None
    code, out = _run("export", run, "-o", bundle, "--precision", "fp32,int8-static")
    assert code == 0, out
    code, said = _run("compress", bundle, test_ts, "-o", tmp_path / "t.eae")
    assert code == 0 and "Compressed 40 samples" in said, said
    code, out = _run("decompress", bundle, tmp_path / "t.eae", "-o", tmp_path / "back.npy")
    assert code == 0, out
    back, test = np.load(tmp_path / "back.npy"), read_ts(test_ts).x
    assert back.shape == test.shape == (40, 6, 100)
    model = rt.load(bundle)
    np.testing.assert_array_equal(back, decompress(model, (tmp_path / "t.eae").read_bytes()))
    mse = float(np.mean((model.to_model_units(test) - model.to_model_units(back)) ** 2))
    assert abs(mse - float(said.split("MSE ")[1].split(",")[0])) <= 1e-5 + 1e-4 * mse  # what compress reported
    code, out = _run("encode", bundle, test_ts, "-o", tmp_path / "codes.npy")
    assert code == 0 and np.load(tmp_path / "codes.npy").shape == (40, 16)
    code, out = _run("train", "--resume", "--out", run, "--epochs", "8", "--device", "cpu")
    assert code == 0 and "(8 epochs)" in out, out


@pytest.mark.skipif(not (TIMESERIES / "GunPoint").is_dir() or not BASIC.is_dir(), reason=_NO_DATA)
def test_real_ts_files_as_data_sources():
    """GunPoint (1 x 150) and BasicMotions (6 x 100) as the data layer reads them for every command."""
    gun = TIMESERIES / "GunPoint" / "GunPoint_TRAIN.ts"
    ds = load_dataset(gun)
    assert ds.format == "ts" and ds.x.shape == (50, 1, 150) and ds.labels is not None
    cut = load_dataset(gun, signal=SignalSpec(window=50, hop=25))
    np.testing.assert_array_equal(cut.x, window_series(read_ts(gun).x, 50, 25))  # 5 windows per case
    assert cut.x.shape == (250, 1, 50) and cut.labels.tolist()[:5] == [ds.labels[0]] * 5
    test = BASIC / "BasicMotions_TEST.ts"
    src = open_source(test, (6, 100))
    np.testing.assert_array_equal(np.concatenate([b for _, b in src.blocks(7)]), read_ts(test).x)
    np.testing.assert_array_equal(load_array_input(test, (6, 100)), read_ts(test).x)
    with pytest.raises(DataError, match=r"holds samples of shape \(6, 100\), but the model expects \(1, 150\)"):
        open_source(test, (1, 150))
