"""Training: run folder contents, reproducibility, save/load, resume, denoising, VAE, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from edgeae.checkpoint import load_run
from edgeae.cli import cli
from edgeae.errors import CheckpointError, ConfigError, TrainingError
from edgeae.train import apply_noise, train
from tests.conftest import MNIST


def _quick(tmp_path, name="run", **kw):
    kw.setdefault("epochs", 2)
    return train(out=tmp_path / name, **kw)


def test_run_folder_contents_and_metrics(tmp_path):
    result = _quick(tmp_path)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "weights.safetensors", "metrics.json", "loss.png", "reconstructions.png"} <= files
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert metrics["n_train"] + metrics["n_val"] == 1797
    assert len(metrics["history"]) == 2
    assert metrics["val_psnr"] == pytest.approx(10 * np.log10(1 / metrics["val_mse"]))
    cfg = json.loads((result.run_dir / "config.json").read_text())
    assert cfg["normalization"] == {"mode": "scale255", "raw_dtype": "uint8", "offset": [0.0], "scale": [255.0]}
    assert cfg["model"]["input_shape"] == [1, 8, 8]


@pytest.mark.parametrize("kind", ["mlp", "conv", "vae", "conv-vae"])
@pytest.mark.parametrize("loss", ["mse", "bce", "mae"])
def test_every_model_and_loss_trains_and_reloads(tmp_path, kind, loss):
    result = _quick(tmp_path, model=kind, loss=loss, epochs=1, channels=(4, 8), hidden=(32,))
    assert np.isfinite(result.metrics["val_loss"])
    cfg, model = load_run(result.run_dir)
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.encode(x), result.model.encode(x))
        assert torch.equal(model.decoder(model.encode(x)), result.model.decoder(result.model.encode(x)))
    if kind in ("vae", "conv-vae"):
        assert "val_elbo" in result.metrics


def test_same_seed_same_weights(tmp_path):
    a = _quick(tmp_path, "a", seed=3)
    b = _quick(tmp_path, "b", seed=3)
    c = _quick(tmp_path, "c", seed=4)
    sa, sb, sc = (r.model.state_dict() for r in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_digits_default_quality(tmp_path):
    """The default job (MLP on digits) reaches 18 dB validation PSNR."""
    result = train(out=tmp_path / "d")
    assert result.metrics["val_psnr"] >= 18.0


def test_denoiser_metrics(tmp_path):
    result = _quick(tmp_path, noise="gaussian:0.3", epochs=8)
    m = result.metrics
    assert m["val_psnr_denoised"] > m["val_psnr_noisy"]


@pytest.mark.parametrize("noise", [("gaussian", 0.3), ("saltpepper", 0.2), ("mask", 0.25)])
def test_apply_noise_kinds(noise):
    x = torch.full((200, 10), 0.5)
    y = apply_noise(x, noise, torch.Generator().manual_seed(0))
    changed = (y != x).float().mean().item()
    if noise[0] == "gaussian":
        assert changed > 0.9 and 0.0 <= y.min() and y.max() <= 1.0
    else:
        assert changed == pytest.approx(noise[1], abs=0.05)
    if noise[0] == "mask":
        assert set(y.unique().tolist()) <= {0.0, 0.5}


def test_standardized_csv_data(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.normal(size=(300, 3))
    data = np.hstack([base, base @ rng.normal(size=(3, 5))]) * 50 + 100
    path = tmp_path / "table.csv"
    np.savetxt(path, data, delimiter=",")
    result = _quick(tmp_path, data=str(path), epochs=5, code_size=3)
    assert result.config.normalization.mode == "standardize"
    assert result.config.model.output_activation == "identity"
    assert not (result.run_dir / "reconstructions.png").exists()
    with pytest.raises(ConfigError, match="--loss bce needs targets in"):
        _quick(tmp_path, "bce", data=str(path), loss="bce")


def test_resume_continues(tmp_path):
    first = _quick(tmp_path, epochs=2)
    resumed = train(out=first.run_dir, resume=True, epochs=4)
    assert resumed.metrics["epochs_run"] == 4
    assert [h["epoch"] for h in resumed.metrics["history"]] == [1, 2, 3, 4]
    lrs = [h["lr"] for h in resumed.metrics["history"][1:]]
    assert lrs == sorted(lrs, reverse=True)  # the cosine continues down, it does not restart
    assert json.loads((first.run_dir / "config.json").read_text())["train"]["epochs"] == 4


def test_refuses_non_empty_out_and_bad_resume(tmp_path):
    first = _quick(tmp_path, epochs=1)
    with pytest.raises(ConfigError, match="is not empty; choose another --out, --resume"):
        _quick(tmp_path, epochs=1)
    assert (first.run_dir / "weights.safetensors").exists()
    with pytest.raises(ConfigError, match="--resume needs --out pointing at an earlier run folder"):
        train(out=tmp_path / "nothing", resume=True)


def test_nan_loss_stops_with_message(tmp_path):
    with pytest.raises(TrainingError, match="the loss became nan at epoch 1, batch .*lower --lr"):
        _quick(tmp_path, lr=1e30, epochs=1, hidden=(64,))


def test_keyboard_interrupt_keeps_best(tmp_path, monkeypatch):
    import edgeae.train as tr

    calls = {"n": 0}
    real = tr._evaluate

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:  # during the third epoch's validation
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(tr, "_evaluate", flaky)
    result = _quick(tmp_path, epochs=5)
    assert result.interrupted
    assert result.metrics["epochs_run"] == 2 and (result.run_dir / "weights.safetensors").exists()


def test_load_run_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found; train one with"):
        load_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is not a run folder: config.json is missing"):
        load_run(tmp_path / "empty")
    result = _quick(tmp_path, epochs=1)
    cfg = json.loads((result.run_dir / "config.json").read_text())
    cfg["model"]["code_size"] = 5
    (result.run_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"do not fit the model described by config.json \(decoder.net.0.0.weight: file has \(64, 16\), config needs \(64, 5\)"):
        load_run(result.run_dir)


def test_plain_functions_no_callable_modules(tmp_path):
    import types

    import edgeae.export
    import edgeae.train as train_module

    assert type(train_module) is types.ModuleType and type(edgeae.export) is types.ModuleType
    assert not callable(train_module) and not callable(edgeae.export)
    result = train(out=tmp_path / "x", epochs=1)
    assert result.run_dir.exists()


def _grid_tiles(path, n, h=8, w=8, per_row=8, scale=4):
    """The (n, h, w) uint8 tiles of a sample grid PNG (rows of 8, 1-pixel gaps, 4x pixels)."""
    from PIL import Image

    grid = np.asarray(Image.open(path))
    rows = -(-n // per_row)
    assert grid.shape == (scale * (rows * (h + 1) + 1), scale * (per_row * (w + 1) + 1))
    g = grid[::scale, ::scale]
    return np.stack([g[1 + (i // per_row) * (h + 1):][:h, 1 + (i % per_row) * (w + 1):][:, :w] for i in range(n)])


def test_cli_train_and_sample(tmp_path):
    from edgeae.data import load_dataset
    from edgeae.data.imageio import to_uint8
    from edgeae.train import prepare_data

    runner = CliRunner()
    out = tmp_path / "run"
    res = runner.invoke(cli, ["train", "--epochs", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "validation PSNR" in res.output and f"edgeae export {out}" in res.output
    grid = tmp_path / "grid.png"
    res = runner.invoke(cli, ["sample", str(out), "-n", "16", "-o", str(grid)])
    assert res.exit_code == 0 and "interpolations between real samples" in res.output
    assert res.output.strip() == f"Wrote 16 interpolations between real samples to {grid}"
    tiles = _grid_tiles(grid, 16)  # -n 16: two rows of eight
    # each row decodes 8 evenly spaced codes from one real validation sample's code to another's
    cfg, model = load_run(out)
    split, _ = prepare_data(load_dataset("digits"), cfg.data, cfg.normalization)
    with torch.no_grad():
        val_codes = model.encode(split.val.load())
        val_tiles = to_uint8(model.decoder(val_codes).numpy())[:, 0].astype(int)  # (n_val, 8, 8)
        for row in range(2):
            ends = []
            for col in (0, 7):
                tile = tiles[row * 8 + col]
                i = int(np.abs(val_tiles - tile).sum(axis=(1, 2)).argmin())
                assert np.abs(val_tiles[i] - tile).max() <= 1  # a real validation sample, decoded
                ends.append(val_codes[i])
            t = torch.linspace(0, 1, 8)[:, None]
            want = to_uint8(model.decoder((1 - t) * ends[0] + t * ends[1]).numpy())[:, 0]
            assert np.abs(want.astype(int) - tiles[row * 8:row * 8 + 8]).max() <= 1
        assert not np.array_equal(tiles[0], tiles[8])  # two different pairs
    again = tmp_path / "again.png"
    assert runner.invoke(cli, ["sample", str(out), "-n", "16", "-o", str(again)]).exit_code == 0
    assert again.read_bytes() == grid.read_bytes()  # seeded
    other = tmp_path / "other.png"
    assert runner.invoke(cli, ["sample", str(out), "-n", "12", "--seed", "1", "-o", str(other)]).exit_code == 0
    twelve = _grid_tiles(other, 16)
    assert not np.array_equal(twelve[:8], tiles[:8])  # another seed picks other samples
    assert (twelve[12:] == 0).all() and (twelve[8:12] > 0).any(axis=(1, 2)).all()  # 12 samples, 4 blank tiles
    five = tmp_path / "five.png"
    assert runner.invoke(cli, ["sample", str(out), "-n", "5", "-o", str(five)]).exit_code == 0
    assert _grid_tiles(five, 5, per_row=5).shape == (5, 8, 8)  # one row of 5 steps


def test_cli_options_reach_training(tmp_path, monkeypatch):
    """--val-fraction, --split ordered, --device cpu and --patience, from the command line."""
    import edgeae.train as tr
    from edgeae.data import load_dataset
    from edgeae.train import prepare_data

    calls = {"n": 0}
    real = tr._evaluate

    def worsening(*args, **kw):  # real metrics, but the validation loss rises after epoch 1
        result = real(*args, **kw)
        calls["n"] += 1
        return {**result, "loss": result["loss"] + calls["n"]}

    monkeypatch.setattr(tr, "_evaluate", worsening)
    out = tmp_path / "r"
    res = CliRunner().invoke(cli, ["train", "--epochs", "10", "--patience", "2", "--val-fraction", "0.25",
                                   "--split", "ordered", "--device", "cpu", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "early stop: no validation improvement for 2 epochs" in res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 3 and metrics["best_epoch"] == 1 and len(metrics["history"]) == 3
    assert metrics["device"] == "cpu"
    assert metrics["n_val"] == 449 and metrics["n_train"] == 1797 - 449  # round(0.25 * 1797)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["data"]["split"] == "ordered" and cfg["data"]["val_fraction"] == 0.25
    assert cfg["train"]["patience"] == 2 and cfg["train"]["device"] == "cpu"
    run_cfg, _ = load_run(out)
    digits = load_dataset("digits")
    split, _ = prepare_data(digits, run_cfg.data, run_cfg.normalization)
    np.testing.assert_array_equal(split.val_raw, digits.x[-449:])  # ordered: the last samples held out


def test_cli_beta_weights_the_kl_term(tmp_path):
    from edgeae.data import load_dataset
    from edgeae.losses import kl_divergence, reconstruction_loss
    from edgeae.train import prepare_data

    out = tmp_path / "vae"
    res = CliRunner().invoke(cli, ["train", "--model", "vae", "--beta", "0.25", "--epochs", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    cfg, model = load_run(out)
    assert cfg.train.beta == 0.25
    split, _ = prepare_data(load_dataset("digits"), cfg.data, cfg.normalization)
    with torch.no_grad():
        val = split.val.load()
        o = model(val)
        recon = float(reconstruction_loss(o.x_hat, val, cfg.train.loss, per_sample_sum=True))
        kl = float(kl_divergence(o.mean, o.log_var))
    metrics = json.loads((out / "metrics.json").read_text())
    assert kl > 1.0
    assert metrics["val_loss"] == pytest.approx(recon + 0.25 * kl, rel=1e-4)  # the loss that was trained
    assert metrics["val_elbo"] == pytest.approx(-(recon + kl), rel=1e-4)  # the ELBO keeps the full KL


def test_cli_resize_and_resume_end_to_end(tmp_path):
    """A 16x16 image folder trained at --resize 8x8, resumed, exported and reconstructed."""
    import edgeae.runtime as rt
    from edgeae.data import load_dataset
    from edgeae.data.imageio import save_images

    big = np.kron(load_dataset("digits").x[:60], np.ones((1, 1, 2, 2), np.uint8))  # (60, 1, 16, 16)
    save_images(big, tmp_path / "imgs")
    runner = CliRunner()
    run, bundle = tmp_path / "run", tmp_path / "bundle"
    res = runner.invoke(cli, ["train", "--data", str(tmp_path / "imgs"), "--resize", "8x8", "--epochs", "1",
                              "--out", str(run)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["train", "--resume", "--epochs", "2", "--out", str(run)])
    assert res.exit_code == 0, res.output
    assert "(2 epochs)" in res.output
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["resize"] == [8, 8] and cfg["model"]["input_shape"] == [1, 8, 8] and cfg["train"]["epochs"] == 2
    assert [h["epoch"] for h in json.loads((run / "metrics.json").read_text())["history"]] == [1, 2]
    res = runner.invoke(cli, ["export", str(run), "-o", str(bundle), "--codec-bits", "none"])
    assert res.exit_code == 0, res.output
    assert rt.read_manifest(bundle).sample_shape == (1, 8, 8)
    res = runner.invoke(cli, ["reconstruct", str(bundle), str(tmp_path / "imgs"), "--resize", "8x8"])
    assert res.exit_code == 0, res.output
    small = load_dataset(str(tmp_path / "imgs"), (8, 8)).x
    model = rt.load(bundle)
    want = rt.psnr(small / 255.0, model.reconstruct(small))
    assert f"PSNR {want:.2f} dB" in res.output and res.output.startswith("Reconstructed 60 samples")
    res = runner.invoke(cli, ["reconstruct", str(bundle), str(tmp_path / "imgs")])
    assert res.exit_code == 1 and res.output.startswith("Error: ") and "16" in res.output


def test_cli_vae_sample(tmp_path):
    runner = CliRunner()
    out = tmp_path / "vae"
    assert runner.invoke(cli, ["train", "--model", "vae", "--epochs", "2", "--out", str(out)]).exit_code == 0
    res = runner.invoke(cli, ["sample", str(out), "-n", "8", "-o", str(tmp_path / "g.png")])
    assert res.exit_code == 0 and "draws from the prior" in res.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--data", "nowhere.npy"], "Error: nowhere.npy not found"),
        (["--noise", "blur:1"], "Error: unknown noise kind 'blur'; choose one of: gaussian, saltpepper, mask"),
        (["--noise", "gaussian"], "Error: noise must look like KIND:LEVEL"),
        (["--hidden", "12,abc"], "Error: hidden must be comma-separated positive integers, got '12,abc'"),
        (["--epochs", "0"], "Error: epochs must be a positive integer, got 0"),
        (["--device", "cuda"] if not torch.cuda.is_available() else ["--epochs", "-1"],
         "Error: --device cuda was requested but PyTorch sees no CUDA GPU; use --device cpu or auto"
         if not torch.cuda.is_available() else "Error: epochs must be a positive integer, got -1"),
        (["--model", "conv", "--channels", "4,8,16,32"], "Error: image size 8x8 is too small for 4 stride-2 conv layers"),
        (["--resume"], "Error: --resume needs --out pointing at an earlier run folder"),
    ],
)
def test_cli_errors(tmp_path, args, message):
    res = CliRunner().invoke(cli, ["train", "--epochs", "1", "--out", str(tmp_path / "r"), *args]
                             if "--resume" not in args else ["train", *args])
    assert res.exit_code == 1, res.output
    assert res.output.splitlines()[-1].startswith(message), res.output
    assert "Traceback" not in res.output


def test_cli_sample_errors(tmp_path):
    res = CliRunner().invoke(cli, ["sample", str(tmp_path / "none")])
    assert res.exit_code == 1
    assert res.output.strip() == f"Error: run folder {tmp_path / 'none'} not found; train one with `edgeae train --out {tmp_path / 'none'}`"


def test_every_command_has_help():
    runner = CliRunner()
    for name in cli.commands:
        res = runner.invoke(cli, [name, "--help"])
        assert res.exit_code == 0 and "Usage:" in res.output, name


def test_quantization_aware_training_learns(tmp_path):
    """Codes trained with --latent-bits stay informative (no collapse to the mean sample)."""
    from edgeae.data import load_dataset

    x = load_dataset("digits").x.astype(np.float64) / 255.0
    mean_only = 10 * np.log10(1 / ((x - x.mean(0)) ** 2).mean())  # PSNR of a collapsed model
    result = _quick(tmp_path, "q", latent_bits=4, epochs=15)
    assert result.metrics["val_psnr"] > mean_only + 3.0
    codes = result.model.encode(torch.rand(32, 1, 8, 8))
    assert codes.std(0).mean() > 0.05  # samples get different codes


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason=f"MNIST not found at {MNIST}")
def test_wide_conv_does_not_die_at_the_default_rate(tmp_path):
    """Without the learning-rate warm-up, Adam's first full-rate steps killed every ReLU of this
    wide conv model on MNIST (constant output, 9.3 dB, loss stuck from epoch 1)."""
    result = train(str(MNIST), "conv", out=tmp_path / "w", channels=(64, 128), code_size=80, epochs=1,
                   split="ordered")
    assert result.metrics["val_psnr"] > 15.0, result.metrics["history"]


def test_random_shift_moves_whole_images():
    from edgeae.train import random_shift

    x = torch.rand(50, 1, 6, 6) + 1.0  # strictly positive, so zero fill is visible
    y = random_shift(x, 2, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    assert torch.equal(random_shift(x, 2, torch.Generator().manual_seed(0)), y)  # seeded
    assert torch.equal(random_shift(x, 0, torch.Generator()), x)
    for a, b in zip(x, y, strict=True):
        # each output is the input translated by some (dy, dx) in [-2, 2]^2, zero-filled
        found = False
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                shifted = torch.zeros_like(a)
                src = a[:, max(dy, 0):6 + min(dy, 0), max(dx, 0):6 + min(dx, 0)]
                shifted[:, max(-dy, 0):6 + min(-dy, 0), max(-dx, 0):6 + min(-dx, 0)] = src
                found = found or torch.equal(shifted, b)
        assert found
    assert (y == 0).any()  # some samples were moved


def test_augment_shift_trains_and_refuses_vectors(tmp_path, monkeypatch):
    import edgeae.train as tr

    seen = []
    real = tr.random_shift

    def recording(x, max_shift, generator):
        y = real(x, max_shift, generator)
        seen.append((max_shift, len(x), bool((y != x).any())))
        return y

    monkeypatch.setattr(tr, "random_shift", recording)
    result = _quick(tmp_path, augment_shift=1, epochs=2)
    assert result.config.train.augment_shift == 1
    steps = -(-result.metrics["n_train"] // 64)
    assert len(seen) == 2 * steps  # every training batch of both epochs is shifted
    assert {s for s, _, _ in seen} == {1} and all(moved for _, _, moved in seen)
    assert sum(n for _, n, _ in seen) == 2 * result.metrics["n_train"]
    seen.clear()
    _quick(tmp_path, "plain", epochs=1)
    assert seen == []  # off by default
    path = tmp_path / "t.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(40, 4)), delimiter=",")
    res = CliRunner().invoke(cli, ["train", "--data", str(path), "--augment-shift", "2", "--out", str(tmp_path / "v")])
    assert res.exit_code == 1
    assert res.output.strip() == "Error: --augment-shift moves image pixels; this data set holds vectors, not images"


def test_last_batch_of_one_sample_is_skipped(tmp_path):
    path = tmp_path / "t.csv"
    np.savetxt(path, np.random.default_rng(0).normal(size=(112, 5)), delimiter=",")
    # 101 training rows with batches of 10 leave one sample over: batch norm (sigmoid codes) needs 2
    result = _quick(tmp_path, data=str(path), latent_bits=4, batch_size=10, epochs=1, code_size=2)
    assert result.metrics["n_train"] == 101 and np.isfinite(result.metrics["val_loss"])


def test_overwrite_clears_the_earlier_run(tmp_path):
    first = _quick(tmp_path, epochs=1)
    (first.run_dir / "weights.safetensors").write_bytes(b"stale")
    second = train(out=first.run_dir, epochs=1, overwrite=True, code_size=8)
    assert second.config.model.code_size == 8
    assert load_run(first.run_dir)[0].model.code_size == 8  # the stale weights were replaced


def test_config_errors_for_impossible_combinations(tmp_path):
    with pytest.raises(ConfigError, match="--latent-bits quantizes deterministic codes; use it with --model mlp or conv"):
        _quick(tmp_path, model="vae", latent_bits=4)
    with pytest.raises(ConfigError, match="needs at least one conv layer: give --channels"):
        _quick(tmp_path, "c", model="conv", channels="")


def test_run_data_must_match(tmp_path):
    from edgeae.data import load_dataset
    from edgeae.errors import DataError
    from edgeae.rows import prepare_data

    run = _quick(tmp_path, epochs=1)
    other = load_dataset("digits")
    other.x = other.x[:100]
    with pytest.raises(DataError, match=r"holds 100 samples of shape \(1, 8, 8\), but the run was trained on 1797"):
        prepare_data(other, run.config.data, run.config.normalization)


def test_progress_callback_counts_every_batch_and_replaces_the_epoch_log(tmp_path):
    seen, lines = [], []
    result = train(out=tmp_path / "p", epochs=2, batch_size=256, patience=5, progress=seen.append, log=lines.append)
    steps = result.metrics["n_train"] // 256 + (1 if result.metrics["n_train"] % 256 > 1 else 0)
    assert [p.step for p in seen] == list(range(1, 2 * steps + 1))
    assert {p.total for p in seen} == {2 * steps}
    assert [p.epoch for p in seen] == [1] * steps + [2] * steps
    assert all(p.epochs == 2 and p.loss > 0 for p in seen)
    assert seen[0].best_val == float("inf") and seen[-1].best_val < float("inf")
    assert not any(line.startswith("epoch") for line in lines)


def test_the_training_library_does_not_import_click():
    import subprocess
    import sys

    code = "import sys, edgeae.train, edgeae.export; print('click' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False"
