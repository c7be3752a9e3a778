#!/usr/bin/python3
"""make_fixtures.py - golden fixtures for the DDSP DSP (tests/test_ddsp_dsp.c).

    /usr/bin/python3 tools/ddsp/make_fixtures.py

Writes tests/fixtures/ddsp/<name>.osw, each holding the controls going in
and the audio (or features) coming out of tools/ddsp/dsp.py, computed in
float64 from float32-rounded inputs (what the file stores), with metadata
"type" and the configuration the C object needs. Before writing, the PyTorch
mirror is checked against literal transcriptions of DDSP's own algorithms
(ddsp.core.harmonic_synthesis with 'window' amplitude resampling, and
frequency_filter with 'valid' padding and no delay crop), so the fixtures tie
the C code to DDSP, not only to this project's mirror. Seeds are fixed: the
files change only when this script does. Total size is kept under 500 KB.
"""

import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import dsp  # noqa: E402
import osw  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "tests", "fixtures", "ddsp")
MAX_TOTAL = 500 * 1024

torch.set_default_dtype(torch.float64)


def r32(a):
    """Round to float32 values, kept as float64 (what the fixture stores)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def t64(a):
    return torch.from_numpy(np.asarray(a, dtype=np.float64))


# ------------------------------------------------------------ DDSP, literally

def ddsp_upsample_with_windows(x, n_timesteps):
    """ddsp.core.upsample_with_windows (add_endpoint=True): x [F, C]."""
    x = np.concatenate([x, x[-1:]], axis=0)
    n_frames = x.shape[0]
    hop = n_timesteps // (n_frames - 1)
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))  # periodic
    out = np.zeros(((n_frames + 1) * hop, x.shape[1]))
    for k in range(n_frames):
        out[k * hop:k * hop + 2 * hop] += x[k][None, :] * win[:, None]
    return out[hop:-hop]


def ddsp_resize_linear(x, n_timesteps):
    """tf.compat.v1.image.resize bilinear, align_corners=False: x [F, C]."""
    F = x.shape[0]
    src = np.arange(n_timesteps) * (F / n_timesteps)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, F - 1)
    fr = (src - i0)[:, None]
    return x[i0] * (1 - fr) + x[i1] * fr


def ddsp_harmonic_synthesis(f0, amp, dist, n_samples, sample_rate):
    """ddsp.core.harmonic_synthesis for one example (numpy, float64)."""
    H = dist.shape[-1]
    freqs = f0[:, None] * np.arange(1, H + 1)[None, :]
    amps = amp[:, None] * dist
    fenv = ddsp_resize_linear(freqs, n_samples)
    aenv = ddsp_upsample_with_windows(amps, n_samples)
    aenv = np.where(fenv >= sample_rate / 2.0, 0.0, aenv)
    phases = np.cumsum(2 * np.pi * fenv / sample_rate, axis=0)
    return np.sum(aenv * np.sin(phases), axis=-1)


def ddsp_frequency_filter_valid(audio, mags):
    """ddsp.core.frequency_filter(audio, mags, window_size=0, padding='valid')
    with delay_compensation=0, first len(audio) samples (numpy)."""
    ir = np.fft.irfft(mags, axis=-1)                       # zero phase, [F, L]
    L = ir.shape[-1]
    win = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(L) / L)
    ir = np.fft.fftshift(np.fft.fftshift(win) * ir, axes=-1)
    F = mags.shape[0]
    hop = int(np.ceil(len(audio) / F))
    nfft = int(2 ** np.ceil(np.log2(hop + L - 1)))
    frames = audio.reshape(F, hop)
    y = np.fft.irfft(np.fft.rfft(frames, nfft) * np.fft.rfft(ir, nfft), nfft)
    out = np.zeros((F - 1) * hop + nfft)
    for k in range(F):
        out[k * hop:k * hop + nfft] += y[k]
    return out[:len(audio)]


# ------------------------------------------------------------ fixtures

def harmonic_case(rng, sr, fr, H, F, f0_lo, f0_hi, model_rate=None):
    t = np.arange(F) / F
    f0 = f0_lo * (f0_hi / f0_lo) ** t * (1 + 0.01 * np.sin(2 * np.pi * 3 * t))
    f0 = r32(f0)
    tensors = {"f0": f0}
    if model_rate:
        amp_logit = r32(rng.normal(0, 2, F))
        dist_logits = r32(rng.normal(0, 3, (F, H)) - np.linspace(0, 4, H)[None, :])
        amp, dist = dsp.harmonic_controls(t64(amp_logit), t64(dist_logits), t64(f0),
                                          model_rate)
        amp, dist = amp.numpy(), dist.numpy()
        tensors.update(amp_logit=amp_logit, dist_logits=dist_logits)
        tensors.update(amp=amp.copy(), dist=dist.copy())
        amp, dist = r32(amp), r32(dist)  # the C test renders the stored values
    else:
        amp = r32(np.abs(rng.normal(0.3, 0.2, F)))
        amp[F // 3:F // 3 + 2] = 0  # a gap: fade out and back in
        dist = r32(rng.uniform(0, 1, (F, H)) / np.arange(1, H + 1)[None, :])
        tensors.update(amp=amp, dist=dist)
    audio = dsp.harmonic_synth(t64(f0)[None], t64(amp)[None], t64(dist)[None], sr, fr)[0]
    tensors["audio"] = audio.numpy()
    meta = {"type": "harmonic", "sample_rate": str(sr), "frame_rate": repr(float(fr)),
            "n_harmonics": str(H), "frames": str(F)}
    if model_rate:
        meta["model_rate"] = str(model_rate)
    return tensors, meta, (f0, amp, dist)


def noise_case(rng, sr, fr, nb, F, top, seed):
    # a smooth random spectral envelope per frame, plus DDSP's initial bias
    base = rng.normal(0, 1.5, (F, 6))
    x = np.linspace(0, 1, nb)
    env = sum(base[:, i:i + 1] * np.cos(np.pi * i * x)[None, :] for i in range(6))
    mags = r32(np.stack([dsp.exp_sigmoid(t64(e - 3.0)).numpy() for e in env]))
    mags[F // 2] = 0  # a silent frame
    audio = dsp.filtered_noise(t64(mags)[None], sr, fr, top, seed=seed)[0].numpy()
    tensors = {"mags": mags, "audio": audio}
    meta = {"type": "filtnoise", "sample_rate": str(sr), "frame_rate": repr(float(fr)),
            "n_bands": str(nb), "band_top_hz": repr(float(top)), "seed": str(seed),
            "frames": str(F)}
    return tensors, meta, mags


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240607)
    files = {}

    # --- harmonic bank
    tens, meta, _ = harmonic_case(rng, 48000, 250, 100, 40, 110, 880, model_rate=16000)
    files["harmonic_48k_controls"] = (tens, meta)
    tens, meta, _ = harmonic_case(rng, 44100, 250, 60, 30, 300, 3000)
    files["harmonic_44k_frac"] = (tens, meta)
    tens, meta, (f0, amp, dist) = harmonic_case(rng, 16000, 100, 100, 25, 60, 1500)
    files["harmonic_16k"] = (tens, meta)
    ref = ddsp_harmonic_synthesis(f0, amp, dist, 25 * 160, 16000)
    err = np.max(np.abs(ref - tens["audio"])) / np.max(np.abs(ref))
    assert err < 1e-9, f"mirror vs DDSP harmonic_synthesis: {err}"
    print(f"harmonic mirror vs DDSP literal: max rel err {err:.2e}")

    # --- filtered noise
    tens, meta, mags = noise_case(rng, 16000, 250, 65, 50, 8000.0, 1234)
    files["filtnoise_16k"] = (tens, meta)
    noise = dsp.noise_uniform(1234, 50 * 64).astype(np.float64)
    ref = ddsp_frequency_filter_valid(noise, mags)
    err = np.max(np.abs(ref - tens["audio"])) / np.max(np.abs(ref))
    assert err < 1e-9, f"mirror vs DDSP frequency_filter: {err}"
    print(f"noise mirror vs DDSP literal: max rel err {err:.2e}")
    tens, meta, _ = noise_case(rng, 48000, 250, 65, 30, 8000.0, 7)
    files["filtnoise_48k"] = (tens, meta)
    tens, meta, _ = noise_case(rng, 44100, 250, 65, 20, 8000.0, 99)
    files["filtnoise_44k_frac"] = (tens, meta)

    # --- reverb
    n, m = 4000, 1500
    x = r32(rng.normal(0, 0.3, n))
    ir = r32(rng.normal(0, 1, m) * np.exp(-np.arange(m) / 300.0) * 0.1)
    y = dsp.reverb(t64(x)[None], t64(ir), dry=1.0, wet=0.5)[0].numpy()
    files["reverb"] = ({"input": x, "ir": ir, "audio": y},
                       {"type": "reverb", "dry": "1.0", "wet": "0.5"})

    # --- loudness (DDSP's compute_loudness, numpy reference)
    t = np.arange(4000) / 16000
    sig = {
        "sine1k": 0.1 * np.sin(2 * np.pi * 1000 * t),
        "noise": dsp.noise_uniform(5, 4000).astype(np.float64) * 0.5,
        "chirp": np.sin(2 * np.pi * (100 * t + 3000 * t * t)) * np.minimum(1, t * 8) * 0.3,
    }
    for name, s in sig.items():
        s = r32(s)
        tens = {"input": s}
        for hop in (64, 160):
            tens[f"loudness_db_{hop}"] = dsp.loudness_reference(s, 16000, hop, 512)
        files[f"loudness_{name}"] = (tens, {"type": "loudness", "sample_rate": "16000",
                                            "n_fft": "512", "hops": "64,160"})

    total = 0
    for name, (tens, meta) in files.items():
        tens = {k: np.asarray(v, dtype=np.float32) for k, v in tens.items()}
        path = os.path.join(OUT, name + ".osw")
        osw.write_osw(path, tens, meta)
        total += os.path.getsize(path)
        print(f"{path}: {os.path.getsize(path)} bytes")
    print(f"total {total} bytes")
    assert total < MAX_TOTAL, "fixtures too large"


if __name__ == "__main__":
    main()
