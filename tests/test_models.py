"""Models: shapes for every kind, the encoder/decoder contract, size mapping errors, losses."""

from __future__ import annotations

import pytest
import torch

from edgeae.config import ModelConfig
from edgeae.errors import ConfigError
from edgeae.losses import check_loss_targets, kl_divergence, reconstruction_loss
from edgeae.models import build_model, conv_sizes, default_code_size, default_hidden

SHAPES = {"vector": (20,), "digits": (1, 8, 8), "mnist": (1, 28, 28), "rgb": (3, 32, 32)}


@pytest.mark.parametrize("kind", ["mlp", "conv", "vae", "conv-vae"])
@pytest.mark.parametrize("shape_name", list(SHAPES))
def test_shapes_and_contract(kind, shape_name):
    shape = SHAPES[shape_name]
    if kind.startswith("conv") and len(shape) != 3:
        with pytest.raises(ConfigError, match="needs image data of shape"):
            ModelConfig(kind=kind, input_shape=shape)
        return
    cfg = ModelConfig(kind=kind, input_shape=shape, hidden=(32,), code_size=6)
    model = build_model(cfg).eval()
    x = torch.rand(5, *shape)
    out = model(x)
    assert out.x_hat.shape == (5, *shape)
    assert out.code.shape == (5, 6)
    enc = model.encoder(x)
    if cfg.is_variational:
        mean, log_var = enc
        assert mean.shape == log_var.shape == (5, 6)
        # in eval mode the code is the mean, and the decoder alone reproduces the model
        assert torch.equal(out.code, mean)
    code = model.encode(x)
    assert torch.allclose(model.decoder(code), out.x_hat)


def test_textbook_default_shape():
    assert default_code_size(784) == 32
    assert default_hidden(784, 32) == (128,)
    cfg = ModelConfig(kind="mlp", input_shape=(1, 28, 28), hidden=default_hidden(784, 32), code_size=32)
    model = build_model(cfg)
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(784, 128), (128, 32), (32, 128), (128, 784)]
    assert isinstance(model.decoder.net[-2], torch.nn.Sigmoid)


def test_decoder_hidden_can_differ_from_mirror():
    cfg = ModelConfig(kind="mlp", input_shape=(64,), hidden=(48, 24), decoder_hidden=(40,), code_size=8)
    linear = [m for m in build_model(cfg).decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(8, 40), (40, 64)]


@pytest.mark.parametrize("size", [7, 8, 13, 28, 32])
def test_conv_sizes_restore_odd_and_even(size):
    cfg = ModelConfig(kind="conv", input_shape=(1, size, size), channels=(4, 8), code_size=3)
    model = build_model(cfg)
    assert model(torch.rand(2, 1, size, size)).x_hat.shape == (2, 1, size, size)
    assert conv_sizes(28, 2) == [28, 14, 7]


def test_conv_too_small_is_refused():
    cfg = ModelConfig(kind="conv", input_shape=(1, 8, 8), channels=(4, 8, 16, 32), code_size=3)
    with pytest.raises(ConfigError) as err:
        build_model(cfg)
    assert str(err.value) == (
        "image size 8x8 is too small for 4 stride-2 conv layers (channels 4,8,16,32); need at least 16x16: "
        "use fewer --channels or --resize to a larger size"
    )


def test_conv_channel_count_checked():
    with pytest.raises(ConfigError, match="supports 1 or 3 channels, got 2"):
        ModelConfig(kind="conv", input_shape=(2, 8, 8))


def test_config_rejects_unknown_values():
    with pytest.raises(ConfigError, match="unknown model 'gan'; choose one of: mlp, conv, vae, conv-vae"):
        ModelConfig(kind="gan")
    with pytest.raises(ConfigError, match="hidden must be comma-separated positive integers"):
        ModelConfig(hidden="12,x")


def test_losses_values():
    x = torch.tensor([[0.0, 1.0]])
    y = torch.tensor([[0.5, 0.5]])
    assert reconstruction_loss(x, y, "mse").item() == pytest.approx(0.25)
    assert reconstruction_loss(x, y, "mae").item() == pytest.approx(0.5)
    assert reconstruction_loss(y, x, "bce").item() == pytest.approx(0.6931, abs=1e-4)
    assert reconstruction_loss(x, y, "mse", per_sample_sum=True).item() == pytest.approx(0.5)
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    assert kl_divergence(torch.ones(1, 2), torch.zeros(1, 2)).item() == pytest.approx(1.0)


def test_bce_refuses_targets_outside_unit_range():
    with pytest.raises(ConfigError) as err:
        check_loss_targets("bce", -1.5, 2.0, "sigmoid")
    assert str(err.value) == (
        "--loss bce needs targets in [0, 1], but the data spans [-1.5, 2] after normalization; "
        "use --loss mse or mae for standardized data"
    )
    with pytest.raises(ConfigError, match="needs --output-activation sigmoid"):
        check_loss_targets("bce", 0, 1, "identity")
    check_loss_targets("mse", -5, 5, "identity")  # no error


def test_latent_bits_quantizer():
    cfg = ModelConfig(kind="mlp", input_shape=(16,), hidden=(8,), code_size=4, code_activation="sigmoid")
    model = build_model(cfg, latent_bits=2)
    x = torch.rand(64, 16, requires_grad=True)
    model.train()
    noisy = model(x)
    step = 1 / 3
    clean = model.encode(x)
    assert (noisy.code - clean).abs().max() <= step / 2 + 1e-6  # at most half a step of noise
    assert not torch.allclose(noisy.code * 3, (noisy.code * 3).round())  # not on the grid
    noisy.x_hat.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    model.eval()
    levels = model(x).code.detach() * 3
    assert torch.allclose(levels, levels.round(), atol=1e-6)  # evaluation rounds to the grid
    with pytest.raises(ConfigError, match="--code-activation sigmoid"):
        build_model(ModelConfig(kind="mlp", input_shape=(16,), hidden=(8,), code_size=4), latent_bits=4)
