#!/usr/bin/python3
"""model.py - the DDSP decoder and the differentiable synthesizer around it.

    f0 (Hz), loudness (dB)  ->  Decoder  ->  amplitude, harmonic distribution,
                                             noise band magnitudes
                            ->  dsp.harmonic_synth + dsp.filtered_noise
                            ->  + trainable reverb IR  ->  audio

The decoder is DDSP's RnnFcDecoder (ddsp/training/decoders.py) at a size that
runs in real time for 8 voices on one core:

    f0_s = hz_to_midi(f0) / 127        ld_s = loudness_db / 80 + 1     (DDSP's scaling)
    a = MLP_f0(f0_s), b = MLP_ld(ld_s)                 in_layers x (Linear, LayerNorm, LeakyReLU 0.2)
    g = GRU([a, b])                                     one layer, `gru` units, state across frames
    y = Dense(MLP_out([g, a, b]))                      out_layers x (Linear, LayerNorm, LeakyReLU 0.2)
    y = [amp_logit (1) | dist_logits (n_harmonics) | noise_logits (n_bands)]

Controls (what the C code computes from y, src/models/ddsp.h):
    amp, dist = dsp.harmonic_controls(amp_logit, dist_logits, f0, model_rate)
    mags      = exp_sigmoid(noise_logits + NOISE_BIAS)       NOISE_BIAS = -5 (DDSP's)

Frames: 100 per second (hop 160 samples at 16 kHz, `oscine features`' default),
frame k describes the sound at sample k * 160. Training renders at the model
rate, 16 kHz; the C synthesizer renders the same controls at any output rate.

The reverb is a learned IR of reverb_length samples at 16 kHz whose first
sample is held at 0 (the dry path is added separately, as in DDSP):
out = dry + dry conv ir.

f0 preparation (`prepare_f0`, also the rule of the C transfer stage): frames
that are not voiced (confidence < 0.5 or loudness < -60 dB) hold the last
voiced f0 (the first voiced one before it), so the oscillators never jump to
a tracker's guess in noise; the harmonic amplitude, not f0, silences them.
"""

import math

import numpy as np
import torch
import torch.nn as nn

import dsp

MODEL_RATE = 16000
FRAME_RATE = 100
HOP = MODEL_RATE // FRAME_RATE
NOISE_BIAS = -5.0
LEAKY_SLOPE = 0.2
LN_EPS = 1e-5
F0_RANGE = 127.0
DB_RANGE = 80.0
VOICED_CONF = 0.5
VOICED_DB = -60.0

DEFAULT_CFG = dict(in_hidden=128, in_layers=2, gru=256, out_hidden=256, out_layers=2,
                   n_harmonics=60, n_bands=65, reverb_length=32000)


def hz_to_midi(f0):
    return 12.0 * (torch.log2(torch.clamp(f0, min=1e-3)) - math.log2(440.0)) + 69.0


def prepare_f0(f0, conf, loud, default=440.0):
    """numpy: f0 with unvoiced frames holding the last voiced value (see top)."""
    f0 = np.asarray(f0, dtype=np.float32).copy()
    voiced = (np.asarray(conf) >= VOICED_CONF) & (np.asarray(loud) >= VOICED_DB) & (f0 > 0)
    idx = np.flatnonzero(voiced)
    if idx.size == 0:
        f0[:] = default
        return f0, voiced
    last = f0[idx[0]]
    for i in range(len(f0)):
        if voiced[i]:
            last = f0[i]
        else:
            f0[i] = last
    return f0, voiced


class Block(nn.Module):
    """Linear -> LayerNorm -> LeakyReLU(0.2): one layer of DDSP's fc_stack."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)
        self.norm = nn.LayerNorm(n_out, eps=LN_EPS)

    def forward(self, x):
        return nn.functional.leaky_relu(self.norm(self.lin(x)), LEAKY_SLOPE)


def mlp(n_in, hidden, layers):
    return nn.ModuleList([Block(n_in if i == 0 else hidden, hidden) for i in range(layers)])


def run(stack, x):
    for b in stack:
        x = b(x)
    return x


class Decoder(nn.Module):
    def __init__(self, in_hidden=128, in_layers=2, gru=256, out_hidden=256, out_layers=2,
                 n_harmonics=60, n_bands=65):
        super().__init__()
        self.n_harmonics, self.n_bands = n_harmonics, n_bands
        self.f0_mlp = mlp(1, in_hidden, in_layers)
        self.ld_mlp = mlp(1, in_hidden, in_layers)
        self.gru = nn.GRU(2 * in_hidden, gru, batch_first=True)
        self.out_mlp = mlp(gru + 2 * in_hidden, out_hidden, out_layers)
        self.dense = nn.Linear(out_hidden, 1 + n_harmonics + n_bands)

    def forward(self, f0_hz, loud_db, h0=None):
        """f0_hz, loud_db [B, F] -> y [B, F, 1 + H + NB], GRU state [1, B, gru]."""
        f0_s = hz_to_midi(f0_hz)[..., None] / F0_RANGE
        ld_s = loud_db[..., None] / DB_RANGE + 1.0
        a = run(self.f0_mlp, f0_s)
        b = run(self.ld_mlp, ld_s)
        g, h = self.gru(torch.cat([a, b], -1), h0)
        y = self.dense(run(self.out_mlp, torch.cat([g, a, b], -1)))
        return y, h

    def split(self, y):
        H = self.n_harmonics
        return y[..., 0], y[..., 1:1 + H], y[..., 1 + H:]


class DDSP(nn.Module):
    """Decoder + harmonic + filtered noise + reverb, rendering at MODEL_RATE."""

    def __init__(self, in_hidden=128, in_layers=2, gru=256, out_hidden=256, out_layers=2,
                 n_harmonics=60, n_bands=65, reverb_length=32000):
        super().__init__()
        self.cfg = dict(in_hidden=in_hidden, in_layers=in_layers, gru=gru, out_hidden=out_hidden,
                        out_layers=out_layers, n_harmonics=n_harmonics, n_bands=n_bands,
                        reverb_length=reverb_length)
        self.decoder = Decoder(in_hidden, in_layers, gru, out_hidden, out_layers, n_harmonics,
                               n_bands)
        g = torch.Generator().manual_seed(0)
        t = torch.arange(reverb_length) / MODEL_RATE
        ir = 1e-3 * torch.randn(reverb_length, generator=g) * torch.exp(-t / 0.25)
        self.reverb_ir = nn.Parameter(ir)

    def ir(self):
        """The IR with its first sample held at 0."""
        return torch.cat([torch.zeros(1, device=self.reverb_ir.device), self.reverb_ir[1:]])

    def controls(self, f0_hz, loud_db, h0=None):
        y, h = self.decoder(f0_hz, loud_db, h0)
        amp_logit, dist_logits, noise_logits = self.decoder.split(y)
        amp, dist = dsp.harmonic_controls(amp_logit, dist_logits, f0_hz, MODEL_RATE)
        mags = dsp.exp_sigmoid(noise_logits + NOISE_BIAS)
        return amp, dist, mags, h

    def forward(self, f0_hz, loud_db, noise=None, reverb=True):
        """Audio [B, F * HOP] (the last frame held, as the C voice renders it)
        and the dry harmonic and noise parts. noise: white noise [B, T] or [T]
        in [-1, 1) (default: the C generator, seed 0)."""
        amp, dist, mags, _ = self.controls(f0_hz, loud_db)
        harm = dsp.harmonic_synth(f0_hz, amp, dist, MODEL_RATE, FRAME_RATE)
        noi = dsp.filtered_noise(mags, MODEL_RATE, FRAME_RATE, noise=noise)
        dry = harm + noi
        out = dsp.reverb(dry, self.ir()) if reverb else dry
        return out, harm, noi

    def n_params(self):
        return sum(p.numel() for p in self.parameters())

    def macs_per_frame(self):
        c = self.cfg
        ih, g, oh = c["in_hidden"], c["gru"], c["out_hidden"]
        m = 2 * (ih + (c["in_layers"] - 1) * ih * ih)
        m += 3 * g * (2 * ih + g)
        m += (g + 2 * ih) * oh + (c["out_layers"] - 1) * oh * oh
        m += oh * (1 + c["n_harmonics"] + c["n_bands"])
        return m


def build(cfg=None):
    c = dict(DEFAULT_CFG)
    c.update(cfg or {})
    return DDSP(**c)


# ------------------------------------------------------------ losses

FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


def _mag(x, n):
    w = torch.hann_window(n, device=x.device, dtype=x.dtype)
    return torch.stft(x, n, hop_length=n // 4, win_length=n, window=w, center=True,
                      return_complex=True).abs()


def spectral_loss(pred, target, sizes=FFT_SIZES, eps=1e-7):
    """DDSP's multi-scale spectral loss: for each FFT size, mean |S - S'| +
    mean |log(S + eps) - log(S' + eps)| of STFT magnitudes (75 % overlap)."""
    total = 0.0
    for n in sizes:
        a, b = _mag(pred, n), _mag(target, n)
        total = total + (a - b).abs().mean() + (torch.log(a + eps) - torch.log(b + eps)).abs().mean()
    return total


def baseline_audio(f0_hz, loud_db, n_harmonics=60, gain=None):
    """The reference point of the evaluation: a harmonic synth with a fixed
    1/k distribution, no noise, no reverb, amplitude from the loudness
    (10^(ld/20), scaled by `gain` fitted by least squares when None)."""
    B, F = f0_hz.shape
    k = torch.arange(1, n_harmonics + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    dist = (1.0 / k).expand(B, F, n_harmonics)
    keep = (f0_hz[..., None] * k) < MODEL_RATE / 2
    dist = torch.where(keep, dist, torch.zeros_like(dist))
    dist = dist / dist.sum(-1, keepdim=True).clamp(min=1e-12)
    amp = 10.0 ** (loud_db / 20.0) * (1.0 if gain is None else gain)
    return dsp.harmonic_synth(f0_hz, amp, dist, MODEL_RATE, FRAME_RATE)
