"""Pixel-wise Lightweight Temporal Attention Encoder (L-TAE, Garnot et al., arXiv 2007.00586).

One pixel's Sentinel-2 series ``x`` (B, T, bands) with day offsets ``days`` (B, T) and a
padding ``mask`` (B, T) goes through:

1. per-band standardisation with the train-fold statistics (buffers);
2. input projection ``e_t = W_in x_t + b_in + PE(day_t)`` to ``d_model`` channels, with the
   sinusoidal encoding of the date's day offset (not of its index in the series) repeated in
   each of the ``n_head`` channel groups;
3. per head ``h``: keys ``k_t = W_k e_t + b_k``, one learned master query ``q_h``, scores
   ``q_h . k_t / sqrt(d_k)``, masked softmax over the dates;
4. head ``h`` outputs the attention-weighted sum of channel group ``h`` of ``e_t``; the heads
   are concatenated (``d_model``);
5. MLP (Linear, LayerNorm, ReLU), dropout, output LayerNorm, then the decoder MLP to logits.

Departures from the reference code, on purpose:

* No normalisation acts across the bands of one date, nor after the input projection. A
  per-date LayerNorm (on raw bands or on the ``d_model`` projected channels) removes most of a
  date's brightness, the main cue by which a cloud differs from the ground, and the reference's
  LayerNorm/GroupNorm over (channels, dates) mixes real and padded dates. The band
  standardisation with fixed train statistics already gives the projection unit-scale inputs.
* No BatchNorm: its statistics depend on the batch. The MLP and the decoder use LayerNorm.
* Padded dates get an attention of exactly zero (the reference fills them with -1000).
* The returned attention is the one before attention dropout, so it is the same in training
  and in evaluation mode.
* The attention block runs in float32 even under autocast (it is cheap, and its weights are
  what this study reads); the MLP and the decoder follow autocast.

Fast and exact: with no normalisation between the input projection and the attention, every
step up to the softmax and from the softmax to the concatenated head outputs is linear, so it
is re-associated (same parameters, same function, same gradients, up to rounding):

* score: ``q_h . (W_k e_t + b_k) = u_h . e_t + q_h . b_k`` with ``u_h = W_k,h^T q_h``, and
  ``u_h . e_t = (W_in^T u_h) . x_t + u_h . b_in + (sum over groups g of u_h[g]) . pe(day_t)``
  because the encoding ``pe`` is the same in every group;
* value: ``sum_t a_t e_t[h] = W_in[h] (sum_t a_t x_t) + (sum_t a_t) b_in[h] + sum_t a_t pe(day_t)``.

So the per-date work is done on the small feature vector ``f_t = [x_t, pe(day_t), 1]``
(bands + d_model / n_head + 1 channels) instead of the ``d_model`` embedding and the
``n_head * d_k`` keys, which are never materialised.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
from torch import Tensor, nn

from am4cm.data.facts import N_BANDS, N_CLASSES


@dataclass(frozen=True)
class LTAEConfig:
    """Hyper-parameters of :class:`PixelLTAE`; defaults are the paper's.

    ``mlp`` lists the widths of the MLP after the attention, starting with ``d_model``;
    ``decoder`` the hidden widths of the classifier, which then outputs ``n_classes`` logits.
    Round-trips through ``dataclasses.asdict`` and ``LTAEConfig(**d)`` (lists become tuples).
    """

    in_channels: int = N_BANDS
    n_head: int = 16
    d_k: int = 8
    d_model: int = 256
    mlp: tuple[int, ...] = (256, 128)
    decoder: tuple[int, ...] = (64, 32)
    n_classes: int = N_CLASSES
    dropout: float = 0.2
    attn_dropout: float = 0.1
    max_period: float = 1000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mlp", tuple(int(width) for width in self.mlp))
        object.__setattr__(self, "decoder", tuple(int(width) for width in self.decoder))
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not a multiple of n_head={self.n_head}")
        if not self.mlp or self.mlp[0] != self.d_model:
            raise ValueError(f"mlp must start with d_model={self.d_model}, got {self.mlp}")

    @property
    def head_dim(self) -> int:
        """Channels of each head's value group, and of the positional encoding block."""
        return self.d_model // self.n_head


def encoding_frequencies(n_channels: int, max_period: float) -> tuple[Tensor, Tensor]:
    """Inverse frequencies and phases of the sinusoidal encoding, float64 (n_channels,) each.

    Channel ``j`` of the encoding of day ``d`` is ``sin(d * inv_freq[j] + phase[j])`` with
    ``inv_freq[j] = max_period ** (-2 (j // 2) / n_channels)``: a sine (phase 0) on even
    channels, a cosine (phase pi / 2) on odd ones, as in the reference table.
    """
    channel = torch.arange(n_channels, dtype=torch.float64)
    inv_freq = torch.pow(float(max_period), -2 * channel.div(2, rounding_mode="floor") / n_channels)
    phase = (channel % 2) * (math.pi / 2)
    return inv_freq, phase


def sinusoid_encoding(days: Tensor, inv_freq: Tensor, phase: Tensor) -> Tensor:
    """Sinusoidal encoding of integer day offsets: (...) -> (..., n), in ``inv_freq``'s dtype.

    On CPU the sines are taken once per day of the batch's range and gathered (a batch holds
    B * T dates but spans a few hundred days: several times faster, same formula); on other
    devices, and under ``torch.compile``, they are computed for each date, which needs no
    host synchronisation.
    """
    if days.device.type == "cpu" and days.numel() and not torch.compiler.is_compiling():
        first, last = (int(bound) for bound in days.aminmax())
        if last - first < days.numel():
            span = torch.arange(first, last + 1, dtype=inv_freq.dtype).unsqueeze(-1)  # (S, 1)
            table = torch.sin(torch.addcmul(phase, span, inv_freq))  # (S, n)
            return nn.functional.embedding(days - first, table)
    return torch.sin(torch.addcmul(phase, days.unsqueeze(-1).to(inv_freq.dtype), inv_freq))


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dimension, at least in float32, exactly zero where ``mask`` is False.

    ``mask`` broadcasts to ``scores``. Masked scores are pushed to the lowest float, whose
    exponential underflows to zero next to any real score (an additive bias is several times
    faster than ``masked_fill`` on CPU). A series needs at least one real date; with none,
    its weights spread evenly over the padding instead of becoming NaN.
    """
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32))
    pad_bias = (~mask).to(scores.dtype) * torch.finfo(scores.dtype).min
    return torch.softmax(scores + pad_bias, dim=-1)


def _mlp_layers(widths: Sequence[int]) -> list[nn.Module]:
    """Linear, LayerNorm, ReLU for each consecutive pair of widths."""
    layers: list[nn.Module] = []
    for width_in, width_out in pairwise(widths):
        layers += [nn.Linear(width_in, width_out), nn.LayerNorm(width_out), nn.ReLU()]
    return layers


class PixelLTAE(nn.Module):
    """L-TAE classifier of single-pixel series; see the module docstring for the pipeline.

    ``band_mean`` and ``band_std`` (``in_channels`` values, in the input's units, e.g. the raw
    PASTIS reflectance x 10000) are buffers, so they travel in the ``state_dict``. The master
    queries and the key weights are drawn from N(0, 2 / d_k) as in the reference; the other
    layers keep PyTorch's default initialisation.
    """

    def __init__(
        self, config: LTAEConfig, band_mean: Sequence[float], band_std: Sequence[float]
    ) -> None:
        super().__init__()
        self.config = config
        c = config
        self.register_buffer("band_mean", torch.as_tensor(band_mean, dtype=torch.float32))
        self.register_buffer("band_std", torch.as_tensor(band_std, dtype=torch.float32))
        if self.band_mean.shape != (c.in_channels,) or self.band_std.shape != (c.in_channels,):
            raise ValueError(f"band_mean and band_std need {c.in_channels} values each")
        inv_freq, phase = encoding_frequencies(c.head_dim, c.max_period)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)
        self.register_buffer("phase", phase.float(), persistent=False)

        self.in_proj = nn.Linear(c.in_channels, c.d_model)
        self.key = nn.Linear(c.d_model, c.n_head * c.d_k)
        self.query = nn.Parameter(torch.empty(c.n_head, c.d_k))
        nn.init.normal_(self.query, mean=0.0, std=math.sqrt(2.0 / c.d_k))
        nn.init.normal_(self.key.weight, mean=0.0, std=math.sqrt(2.0 / c.d_k))
        self.attn_dropout = nn.Dropout(c.attn_dropout)

        self.mlp = nn.Sequential(*_mlp_layers(c.mlp))
        self.dropout = nn.Dropout(c.dropout)
        self.out_norm = nn.LayerNorm(c.mlp[-1])
        decoder_widths = (c.mlp[-1], *c.decoder)
        self.decoder = nn.Sequential(
            *_mlp_layers(decoder_widths), nn.Linear(decoder_widths[-1], c.n_classes)
        )

    def folded_weights(self) -> tuple[Tensor, Tensor]:
        """The attention's parameters re-associated onto the features ``[x, pe, 1]``.

        Returns ``score_w`` (n_head, F), with ``score_w @ f_t`` the scaled scores
        ``q_h . k_t / sqrt(d_k)``, and ``value_w`` (n_head, F, head_dim), with
        ``(sum_t a_t f_t) @ value_w[h]`` head ``h``'s output ``sum_t a_t e_t[h]``;
        F = in_channels + head_dim + 1.
        """
        c = self.config
        w_in, b_in = self.in_proj.weight, self.in_proj.bias  # (D, C), (D,)
        w_k = self.key.weight.view(c.n_head, c.d_k, c.d_model)
        b_k = self.key.bias.view(c.n_head, c.d_k)
        query = self.query / math.sqrt(c.d_k)  # (H, d_k)

        u = torch.einsum("hk,hkd->hd", query, w_k)  # (H, D): query through the key projection
        score_w = torch.cat(
            (
                u @ w_in,  # (H, C)
                u.view(c.n_head, c.n_head, c.head_dim).sum(1),  # (H, Dh): pe repeated per group
                (u @ b_in + (query * b_k).sum(1)).unsqueeze(1),  # (H, 1)
            ),
            dim=1,
        )  # (H, F)

        identity = torch.eye(c.head_dim, dtype=w_in.dtype, device=w_in.device)  # (Dh, Dh)
        value_w = torch.cat(
            (
                w_in.view(c.n_head, c.head_dim, c.in_channels).transpose(1, 2),  # (H, C, Dh)
                identity.expand(c.n_head, -1, -1),  # (H, Dh, Dh): pe passes through
                b_in.view(c.n_head, 1, c.head_dim),  # (H, 1, Dh)
            ),
            dim=1,
        )  # (H, F, Dh)
        return score_w, value_w

    def forward(
        self, x: Tensor, days: Tensor, mask: Tensor, return_attention: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Logits (B, n_classes) of series ``x`` (B, T, C), ``days`` (B, T), ``mask`` (B, T).

        ``x`` is raw reflectance (integer or float), ``days`` integer day offsets, ``mask`` True
        on real dates and False on padding. With ``return_attention``, also the attention (n_head, B, T) before attention dropout:
        zero on padded dates, summing to one over each series' real dates.
        """
        x = (x.to(self.band_mean.dtype) - self.band_mean) / self.band_std  # (B, T, C)
        pe = sinusoid_encoding(days, self.inv_freq, self.phase)  # (B, T, Dh)
        features = torch.cat((x, pe, torch.ones_like(x[..., :1])), dim=-1)  # (B, T, F=C+Dh+1)

        with torch.autocast(device_type=x.device.type, enabled=False):
            score_w, value_w = self.folded_weights()  # (H, F), (H, F, Dh)
            scores = torch.matmul(score_w, features.mT)  # (B, H, T)
            attention = masked_softmax(scores, mask.unsqueeze(1))  # (B, H, T)
            pooled = torch.bmm(self.attn_dropout(attention), features)  # (B, H, F)
            heads = torch.einsum("bhf,hfd->bhd", pooled, value_w)  # (B, H, Dh)

        embedding = self.out_norm(self.dropout(self.mlp(heads.flatten(1))))  # (B, mlp[-1])
        logits = self.decoder(embedding)  # (B, n_classes)
        if return_attention:
            return logits, attention.transpose(0, 1)
        return logits


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
