"""Tests of the pixel-wise L-TAE: shapes, masking, encoding, exactness of the folded attention."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pytest
import torch

from am4cm.data.facts import N_BANDS, N_CLASSES
from am4cm.models import LTAEConfig, PixelLTAE, count_parameters
from am4cm.models.ltae import encoding_frequencies, masked_softmax, sinusoid_encoding

TINY = LTAEConfig(n_head=4, d_k=4, d_model=32, mlp=(32, 16), decoder=(8,), n_classes=5)
BAND_MEAN = [1200.0 + 150 * band for band in range(N_BANDS)]
BAND_STD = [1800.0 - 50 * band for band in range(N_BANDS)]


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: threads only add synchronisation (and contention on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(config: LTAEConfig = TINY, seed: int = 0) -> PixelLTAE:
    torch.manual_seed(seed)
    return PixelLTAE(config, BAND_MEAN, BAND_STD).eval()


def make_series(
    batch: int, n_dates: int, seed: int = 0, lengths: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw int16-like reflectance (B, T, 10), sorted int day offsets (B, T), mask (B, T).

    With ``lengths``, series ``b`` has ``lengths[b]`` real dates followed by zero padding.
    """
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 8000, (batch, n_dates, N_BANDS), generator=gen).float()
    days = torch.randint(0, 420, (batch, n_dates), generator=gen).sort(dim=1).values
    mask = torch.ones(batch, n_dates, dtype=torch.bool)
    for b, length in enumerate(lengths or []):
        x[b, length:], days[b, length:], mask[b, length:] = 0, 0, False
    return x, days, mask


def reference_encoding(days: torch.Tensor, n_channels: int, max_period: float) -> torch.Tensor:
    """The reference table, in float64: sin on even channels, cos on odd ones."""
    channel = np.arange(n_channels)
    angle = days.numpy()[..., None] / np.power(max_period, 2 * (channel // 2) / n_channels)
    return torch.from_numpy(np.where(channel % 2 == 0, np.sin(angle), np.cos(angle)))


def explicit_forward(
    model: PixelLTAE, x: torch.Tensor, days: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The paper's formulation from the module's parameters, with keys on every date."""
    c = model.config
    batch, n_dates, _ = x.shape
    x = (x.to(model.band_mean.dtype) - model.band_mean) / model.band_std
    pe = reference_encoding(days, c.head_dim, c.max_period).to(x.dtype).repeat(1, 1, c.n_head)
    embedding = x @ model.in_proj.weight.T + model.in_proj.bias + pe  # (B, T, D)
    keys = embedding @ model.key.weight.T + model.key.bias  # (B, T, H * d_k)
    keys = keys.view(batch, n_dates, c.n_head, c.d_k)
    scores = torch.einsum("hk,bthk->hbt", model.query, keys) / math.sqrt(c.d_k)
    attention = scores.masked_fill(~mask, -math.inf).softmax(dim=-1)  # (H, B, T)
    values = embedding.view(batch, n_dates, c.n_head, c.head_dim)
    heads = torch.einsum("hbt,bthd->bhd", attention, values).flatten(1)  # (B, D)
    logits = model.decoder(model.out_norm(model.dropout(model.mlp(heads))))
    return logits, attention


def test_config_defaults_round_trip_and_validation():
    config = LTAEConfig()
    assert (config.in_channels, config.n_classes) == (N_BANDS, N_CLASSES)
    assert (config.n_head, config.d_k, config.d_model) == (16, 8, 256)
    assert (config.mlp, config.decoder) == ((256, 128), (64, 32))
    as_lists = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in dataclasses.asdict(config).items()
    }
    assert LTAEConfig(**as_lists) == config
    with pytest.raises(ValueError, match="multiple"):
        LTAEConfig(n_head=5)
    with pytest.raises(ValueError, match="mlp"):
        LTAEConfig(mlp=(128, 64))


def test_default_model_layers_and_parameter_count():
    model = make_model(LTAEConfig())
    linears = [module for module in model.decoder if isinstance(module, torch.nn.Linear)]
    assert [layer.in_features for layer in linears] == [128, 64, 32]
    assert linears[-1].out_features == N_CLASSES
    encoder = (10 * 256 + 256) + (256 * 128 + 128) + 16 * 8  # input, keys, queries
    mlp = (256 * 128 + 128) + 2 * 128 + 2 * 128  # linear, its LayerNorm, output LayerNorm
    decoder = (128 * 64 + 64 + 2 * 64) + (64 * 32 + 32 + 2 * 32) + (32 * 20 + 20)
    expected = encoder + mlp + decoder
    assert count_parameters(model) == expected == 80436


def test_output_shapes_and_integer_inputs():
    model = make_model()
    x, days, mask = make_series(6, 9, lengths=[9, 4, 9, 1, 7, 9])
    logits, attention = model(x.to(torch.int16), days.int(), mask, return_attention=True)
    assert logits.shape == (6, TINY.n_classes)
    assert attention.shape == (TINY.n_head, 6, 9)
    assert model(x, days, mask).shape == (6, TINY.n_classes)


def test_padding_changes_nothing_and_gets_zero_attention():
    model = make_model()
    lengths = [7, 3, 5, 1]
    x, days, mask = make_series(len(lengths), 10, lengths=lengths)
    logits, attention = model(x, days, mask, return_attention=True)
    for b, length in enumerate(lengths):
        real = slice(b, b + 1), slice(0, length)
        alone_logits, alone_attention = model(x[real], days[real], mask[real], True)
        torch.testing.assert_close(logits[b], alone_logits[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(attention[:, b, :length], alone_attention[:, 0])
        assert torch.all(attention[:, b, length:] == 0)


def test_attention_sums_to_one_per_head_in_both_modes():
    model = make_model()
    x, days, mask = make_series(5, 8, lengths=[8, 2, 5, 8, 1])
    _, attention = model(x, days, mask, return_attention=True)
    torch.testing.assert_close(attention.sum(-1), torch.ones(TINY.n_head, 5))
    model.train()
    _, train_attention = model(x, days, mask, return_attention=True)
    torch.testing.assert_close(train_attention, attention)


def test_fully_padded_series_stays_finite():
    scores = torch.randn(2, 3, 4)
    mask = torch.tensor([[True, True, False, False], [False, False, False, False]])
    weights = masked_softmax(scores, mask.unsqueeze(1))
    assert torch.isfinite(weights).all()
    assert torch.all(weights[0, :, 2:] == 0)


def test_batch_permutation_permutes_outputs():
    model = make_model()
    x, days, mask = make_series(7, 6, lengths=[6, 2, 6, 4, 1, 5, 6])
    order = torch.randperm(7, generator=torch.Generator().manual_seed(1))
    logits, attention = model(x, days, mask, return_attention=True)
    logits_p, attention_p = model(x[order], days[order], mask[order], return_attention=True)
    torch.testing.assert_close(logits_p, logits[order])
    torch.testing.assert_close(attention_p, attention[:, order])


def test_encoding_matches_reference_formula():
    inv_freq, phase = encoding_frequencies(16, 1000)
    days = torch.randint(0, 450, (20, 50), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(  # table path; float32 angles up to 450 rad: 3e-5 apart at most
        sinusoid_encoding(days, inv_freq.float(), phase.float()),
        reference_encoding(days, 16, 1000).float(),
        atol=5e-5,
        rtol=0,
    )
    wide = torch.tensor([[0, 100_000], [-50, 7]])  # span larger than the batch: direct path
    torch.testing.assert_close(
        sinusoid_encoding(wide, inv_freq, phase), reference_encoding(wide, 16, 1000)
    )


def test_encoding_uses_day_offsets():
    model = make_model()
    x, days, mask = make_series(1, 6)
    logits, attention = model(x, days, mask, return_attention=True)
    shifted_logits, shifted_attention = model(x, days + 17, mask, return_attention=True)
    assert not torch.allclose(logits, shifted_logits)
    assert not torch.allclose(attention, shifted_attention)


def test_encoding_is_repeated_in_every_head_group():
    """With a zero input projection and zero queries, each head pools pe over real dates."""
    model = make_model()
    with torch.no_grad():
        model.in_proj.weight.zero_()
        model.in_proj.bias.zero_()
        model.query.zero_()
    captured = []
    model.mlp.register_forward_pre_hook(lambda _, args: captured.append(args[0]))
    x, days, mask = make_series(3, 8, lengths=[8, 3, 5])
    model(x, days, mask)
    heads = captured[0].view(3, TINY.n_head, TINY.head_dim)
    pe = reference_encoding(days, TINY.head_dim, TINY.max_period).float()
    mean_pe = (pe * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)  # (B, Dh)
    torch.testing.assert_close(heads, mean_pe.unsqueeze(1).expand_as(heads))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_folded_attention_equals_explicit_keys(dtype):
    """Attention, logits and every gradient agree with ``q . (W_k e + b_k)`` on each date."""
    config = TINY if dtype == torch.float64 else LTAEConfig()
    tolerance = {"atol": 1e-9, "rtol": 1e-9} if dtype == torch.float64 else {}
    model = make_model(config).to(dtype)
    if dtype == torch.float64:  # the float32 buffers hold rounded frequencies
        inv_freq, phase = encoding_frequencies(config.head_dim, config.max_period)
        model.inv_freq.copy_(inv_freq)
        model.phase.copy_(phase)
    x, days, mask = make_series(6, 12, lengths=[12, 5, 9, 1, 12, 7])
    logits, attention = model(x, days, mask, return_attention=True)
    explicit_logits, explicit_attention = explicit_forward(model, x, days, mask)
    torch.testing.assert_close(attention, explicit_attention, **tolerance)
    torch.testing.assert_close(logits, explicit_logits, **tolerance)
    if dtype == torch.float64:
        weights = torch.randn(logits.shape, dtype=dtype)
        grads = torch.autograd.grad((logits * weights).sum(), list(model.parameters()))
        explicit_grads = torch.autograd.grad(
            (explicit_logits * weights).sum(), list(model.parameters())
        )
        for grad, explicit_grad in zip(grads, explicit_grads, strict=True):
            torch.testing.assert_close(grad, explicit_grad, **tolerance)


def test_dropout_only_in_training():
    model = make_model(dataclasses.replace(TINY, dropout=0.5, attn_dropout=0.5))
    x, days, mask = make_series(8, 10)
    assert torch.equal(model(x, days, mask), model(x, days, mask))
    model.train()
    assert not torch.equal(model(x, days, mask), model(x, days, mask))


def test_date_brightness_survives_normalisation():
    model = make_model()
    x, days, mask = make_series(1, 8)
    logits, attention = model(x, days, mask, return_attention=True)
    bright = x.clone()
    bright[0, 3] *= 3
    bright_logits, bright_attention = model(bright, days, mask, return_attention=True)
    assert (bright_attention[:, 0, 3] - attention[:, 0, 3]).abs().max() > 1e-3
    assert (bright_logits - logits).abs().max() > 1e-3


def test_autocast_keeps_attention_in_float32():
    model = make_model()
    x, days, mask = make_series(4, 9, lengths=[9, 3, 6, 9])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, attention = model(x, days, mask, return_attention=True)
    assert attention.dtype == torch.float32
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(attention.sum(-1), torch.ones(TINY.n_head, 4))


def test_tiny_model_overfits_random_series():
    model = make_model(dataclasses.replace(TINY, n_classes=4, dropout=0.0, attn_dropout=0.0))
    x, days, mask = make_series(64, 12, lengths=[12 - b % 5 for b in range(64)])
    labels = torch.randint(0, 4, (64,), generator=torch.Generator().manual_seed(3))
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(model(x, days, mask), labels).backward()
        optimiser.step()
    model.eval()
    accuracy = (model(x, days, mask).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.98


def test_checkpoint_round_trip_reproduces_logits():
    model = make_model()
    x, days, mask = make_series(4, 7, lengths=[7, 2, 5, 7])
    buffer = io.BytesIO()
    torch.save({"config": dataclasses.asdict(TINY), "state_dict": model.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    state = checkpoint["state_dict"]
    assert set(state) >= {"band_mean", "band_std"}
    restored = PixelLTAE(
        LTAEConfig(**checkpoint["config"]), state["band_mean"].tolist(), state["band_std"].tolist()
    )
    restored.load_state_dict(state)
    restored.eval()
    assert torch.equal(restored(x, days, mask), model(x, days, mask))
