#!/usr/bin/python3
"""dsp.py - the DDSP synthesizer's DSP in PyTorch, differentiable, mirroring
the C objects in src/dsp/ sample for sample (tests/test_ddsp_dsp.c checks the
C side against fixtures this module writes through make_fixtures.py).

    harmonic_controls  src/dsp/harmonic.h  harmonic_controls (exp_sigmoid, Nyquist, normalise)
    harmonic_synth     src/dsp/harmonic.h  the oscillator bank
    noise_uniform      src/dsp/filtnoise.h the seeded generator (numpy, bit-exact)
    noise_ir           src/dsp/filtnoise.h filtnoise_design
    filtered_noise     src/dsp/filtnoise.h filtnoise_process over a buffer
    reverb             src/dsp/fftconv.h   dry * x + wet * (x conv ir)
    loudness_reference src/dsp/loudness.h  (numpy; DDSP's compute_loudness)
    features           `oscine features`   f0, confidence, loudness from the C code

Conventions (the same as the C headers say):
  - Control frame k takes effect at output sample position k * sr / fr;
    F frames render T = ceil(F * sr / fr) samples, the last frame held.
  - Frame-major tensors: f0 [B, F], amp [B, F], dist [B, F, H], mags [B, F, n_bands].
  - The harmonic phase is accumulated in float64 whatever the input dtype, so
    long renders match the C bank (which accumulates in double).

Needs torch and numpy (Debian python3-torch).
"""

import csv
import math
import os
import subprocess
import tempfile

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FEATURE_RATE = 16000


# ------------------------------------------------------------ control scaling

def exp_sigmoid(x, exponent=10.0, max_value=2.0, threshold=1e-7):
    """DDSP's output nonlinearity: max_value * sigmoid(x)^ln(exponent) + threshold."""
    return max_value * torch.sigmoid(x) ** math.log(exponent) + threshold


def harmonic_controls(amp_logit, dist_logits, f0_hz, model_rate):
    """(amp [B, F], dist [B, F, H]) from decoder outputs amp_logit [B, F] and
    dist_logits [B, F, H]: exp_sigmoid, harmonics at or above model_rate / 2
    zeroed (model_rate: the rate the decoder is trained at), then normalised."""
    amp = exp_sigmoid(amp_logit)
    dist = exp_sigmoid(dist_logits)
    h = torch.arange(1, dist.shape[-1] + 1, dtype=f0_hz.dtype, device=f0_hz.device)
    keep = (f0_hz[..., None] * h) < model_rate / 2.0
    dist = torch.where(keep, dist, torch.zeros_like(dist))
    s = dist.sum(-1, keepdim=True)
    dist = torch.where(s > 0, dist / torch.where(s > 0, s, torch.ones_like(s)),
                       torch.zeros_like(dist))
    return amp, dist


# ------------------------------------------------------------ frame timing

def n_samples(n_frames, sample_rate, frame_rate):
    """Samples that n_frames control frames render: ceil(F * sr / fr)."""
    return int(math.ceil(n_frames * sample_rate / frame_rate - 1e-9))


def frame_position(n, sample_rate, frame_rate, n_frames, device=None):
    """For output samples t = 0..n-1: (k0, k1, u) with frame k0 = floor(p),
    k1 = k0 + 1 (both clipped to the last frame) and u = p - k0, where
    p = t * fr / sr (float64, the same expression as the C code)."""
    t = torch.arange(n, dtype=torch.float64, device=device)
    p = t * frame_rate / sample_rate
    k0 = torch.floor(p)
    u = p - k0
    k0 = k0.long().clamp(max=n_frames - 1)
    k1 = (k0 + 1).clamp(max=n_frames - 1)
    return k0, k1, u


# ------------------------------------------------------------ harmonic synth

def harmonic_synth(f0_hz, amp, dist, sample_rate, frame_rate):
    """The harmonic oscillator bank: audio [B, T] from f0 [B, F] (Hz),
    amp [B, F] and dist [B, F, H] (used as given), T = n_samples(F, ...).
    f0 is interpolated linearly, each harmonic amplitude amp * dist with a
    raised cosine, the phase is the inclusive cumulative sum of f0 / sr (in
    cycles), and harmonics at or above sample_rate / 2 at a sample are silent."""
    B, F = f0_hz.shape
    H = dist.shape[-1]
    dtype, dev = dist.dtype, dist.device
    T = n_samples(F, sample_rate, frame_rate)
    k0, k1, u = frame_position(T, sample_rate, frame_rate, F, dev)

    f0 = torch.clamp(torch.nan_to_num(f0_hz, nan=0.0), min=0.0)
    f_a, f_b = f0[:, k0].double(), f0[:, k1].double()
    f = f_a + (f_b - f_a) * u                               # [B, T] float64
    phase = torch.cumsum(f / sample_rate, dim=1)
    phase = (phase - torch.floor(phase)).to(dtype)           # [B, T] cycles in [0, 1)

    A = amp[..., None] * dist                               # [B, F, H]
    w = (0.5 - 0.5 * torch.cos(math.pi * u)).to(dtype)      # [T]
    a = A[:, k0] + (A[:, k1] - A[:, k0]) * w[None, :, None]  # [B, T, H]
    h = torch.arange(1, H + 1, dtype=torch.float64, device=dev)
    audible = (f[..., None] * h) < sample_rate / 2.0        # [B, T, H]
    hp = torch.frac(phase[..., None] * h.to(dtype))          # h * phase mod 1
    return (torch.where(audible, a, torch.zeros_like(a)) *
            torch.sin(2 * math.pi * hp)).sum(-1)


# ------------------------------------------------------------ filtered noise

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def noise_uniform(seed, n, index=0):
    """The generator of src/dsp/filtnoise.h: n float32 samples, uniform in
    [-1, 1), from sample `index` of the stream for seed (splitmix64 of
    seed + (i + 1) * golden, top 24 bits)."""
    with np.errstate(over="ignore"):
        i = np.arange(index + 1, index + n + 1, dtype=np.uint64)
        z = np.uint64(seed) + i * _GOLDEN
        z ^= z >> np.uint64(30)
        z *= np.uint64(0xBF58476D1CE4E5B9)
        z ^= z >> np.uint64(27)
        z *= np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    top = (z >> np.uint64(40)).astype(np.float32)
    return top * np.float32(2.0 / 16777216.0) - np.float32(1.0)


def noise_ir_length(n_bands, sample_rate, band_top_hz):
    return 2 * int(round((n_bands - 1) * sample_rate / (2.0 * band_top_hz)))


def noise_gain(sample_rate, band_top_hz):
    """Noise amplitude that keeps the in-band power independent of the rate."""
    return math.sqrt(sample_rate / (2.0 * band_top_hz))


def noise_ir(mags, sample_rate, band_top_hz):
    """Linear-phase FIRs [..., L] from band magnitudes [..., n_bands] by
    frequency sampling (filtnoise_design): magnitudes interpolated onto the
    L-point grid (0 above band_top_hz), zero-phase inverse DFT, periodic Hann
    window, shifted by L / 2 to causal form."""
    nb = mags.shape[-1]
    L = noise_ir_length(nb, sample_rate, band_top_hz)
    half = L // 2
    dtype, dev = mags.dtype, mags.device
    mags = torch.clamp(torch.nan_to_num(mags, nan=0.0), min=0.0)
    j = torch.arange(half + 1, dtype=torch.float64, device=dev)
    b = j * sample_rate / L / band_top_hz * (nb - 1)
    inside = b <= nb - 1 + 1e-9
    i0 = torch.clamp(torch.floor(b).long(), max=nb - 1)
    i1 = torch.clamp(i0 + 1, max=nb - 1)
    fr = (b - i0.double()).to(dtype)
    H = mags[..., i0] + (mags[..., i1] - mags[..., i0]) * fr
    H = torch.where(inside, H, torch.zeros_like(H))
    h0 = torch.fft.irfft(H, n=L)                              # zero phase
    m = torch.arange(L, device=dev)
    win = (0.5 - 0.5 * torch.cos(2 * math.pi * m.double() / L)).to(dtype)
    return h0[..., (m + half) % L] * win


def filtered_noise(mags, sample_rate, frame_rate, band_top_hz=None, seed=0, noise=None):
    """Filtered noise [B, T]: block k (the samples with floor(t * fr / sr) == k)
    of white noise filtered by the FIR of mags[:, k] (mags [B, F, n_bands]),
    tails overlap-added, no delay compensation (the FIR delays by L / 2).
    noise: [B, T] or [T] white noise before the gain; default noise_uniform(seed)
    shared by the batch, as the C object with that seed produces it."""
    B, F, nb = mags.shape
    top = band_top_hz or sample_rate / 2.0
    dtype, dev = mags.dtype, mags.device
    T = n_samples(F, sample_rate, frame_rate)
    if noise is None:
        noise = torch.from_numpy(noise_uniform(seed, T)).to(dev)
    noise = noise.to(dtype) * noise_gain(sample_rate, top)
    if noise.dim() == 1:
        noise = noise.expand(B, T)
    ir = noise_ir(mags, sample_rate, top)                   # [B, F, L]
    L = ir.shape[-1]
    k0, _, _ = frame_position(T, sample_rate, frame_rate, F, dev)
    starts = torch.searchsorted(k0, torch.arange(F, device=dev))
    ends = torch.cat([starts[1:], torch.tensor([T], device=dev)])
    maxlen = int((ends - starts).max())
    nfft = 1 << (maxlen + L - 2).bit_length()
    # blocks [B, F, maxlen], zero past each block's end
    idx = starts[:, None] + torch.arange(maxlen, device=dev)[None, :]
    valid = idx < ends[:, None]
    blocks = noise[:, idx.clamp(max=T - 1)] * valid.to(dtype)
    y = torch.fft.irfft(torch.fft.rfft(blocks, nfft) * torch.fft.rfft(ir, nfft), nfft)
    y = y[..., :maxlen + L - 1]                              # [B, F, maxlen + L - 1]
    pos = starts[:, None] + torch.arange(maxlen + L - 1, device=dev)[None, :]
    out = torch.zeros(B, T + maxlen + L, dtype=dtype, device=dev)
    out = out.index_add(1, pos.reshape(-1), y.reshape(B, -1))
    return out[:, :T]


# ------------------------------------------------------------ reverb

def reverb(audio, ir, dry=1.0, wet=1.0):
    """dry * audio + wet * (audio convolved with ir), cut to audio's length
    (fftconv: no delay). audio [B, T]; ir [B, N] or [N]."""
    B, T = audio.shape
    if ir.dim() == 1:
        ir = ir[None]
    n = T + ir.shape[-1] - 1
    nfft = 1 << (n - 1).bit_length()
    y = torch.fft.irfft(torch.fft.rfft(audio, nfft) * torch.fft.rfft(ir, nfft), nfft)
    return dry * audio + wet * y[:, :T]


# ------------------------------------------------------------ features

def a_weighting_db(f):
    """librosa.A_weighting in dB (with its +2 dB offset), floored at -80."""
    f = np.asarray(f, dtype=np.float64)
    c = np.array([12194.217, 20.598997, 107.65265, 737.86223]) ** 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        f2 = f * f
        w = 2.0 + 20.0 * (np.log10(c[0]) + 2 * np.log10(f2) - np.log10(f2 + c[0]) -
                          np.log10(f2 + c[1]) - 0.5 * np.log10(f2 + c[2]) -
                          0.5 * np.log10(f2 + c[3]))
    w = np.where(f > 0, w, -80.0)
    return np.maximum(w, -80.0)


def loudness_reference(audio, sample_rate=16000, hop=64, n_fft=512, range_db=80.0,
                       ref_db=0.0):
    """DDSP's compute_loudness (ddsp >= 3, padding='center') in numpy, float64:
    frame i centred at sample i * hop; ceil(len / hop) frames."""
    x = np.asarray(audio, dtype=np.float64)
    n_frames = -(-len(x) // hop)
    xp = np.concatenate([np.zeros(n_fft // 2), x, np.zeros(n_fft // 2 + hop)])
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    frames = np.stack([xp[i * hop:i * hop + n_fft] for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames * win, axis=-1)) ** 2
    weight = 10.0 ** (a_weighting_db(np.arange(n_fft // 2 + 1) * sample_rate / n_fft) / 10)
    p = np.mean(power * weight, axis=-1)
    db = 10 * np.log10(np.maximum(p, 10 ** (-range_db / 10))) - ref_db
    return np.maximum(db, -range_db)


def features(audio, sample_rate=FEATURE_RATE, hop_ms=10.0, oscine=None):
    """f0_hz, confidence, loudness_db (float32 arrays, one value per frame)
    computed by the C code (`oscine features`), so training and inference
    see the same features. audio: a path to a sound file, or a 1-D array at
    sample_rate. oscine: path of the binary (default $OSCINE_BIN or
    build/oscine in the repository)."""
    exe = oscine or os.environ.get("OSCINE_BIN") or os.path.join(ROOT, "build", "oscine")
    with tempfile.TemporaryDirectory(prefix="oscine-feat-") as d:
        path = audio
        if not isinstance(audio, (str, os.PathLike)):
            import soundfile as sf
            path = os.path.join(d, "in.wav")
            sf.write(path, np.asarray(audio, dtype=np.float32), int(sample_rate),
                     subtype="FLOAT")
        out = os.path.join(d, "features.csv")
        r = subprocess.run([exe, "features", str(path), out, "--hop-ms", str(hop_ms)],
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr.strip() or f"oscine features failed ({r.returncode})")
        with open(out, newline="") as f:
            rows = list(csv.DictReader(f))
    col = lambda k: np.array([float(r[k]) for r in rows], dtype=np.float32)  # noqa: E731
    return col("f0_hz"), col("confidence"), col("loudness_db")
