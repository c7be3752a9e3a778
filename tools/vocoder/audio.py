"""The vocoder's fixed signal conventions, shared with the C side (src/dsp/stft.h,
src/dsp/mel.h, src/models/vocoder.h) and documented in docs/mel.md.

16 kHz. Frame t is the LAST 320 samples ending at sample (t+1)*80 (the signal is
zero before 0): frame t covers samples [(t+1)*80 - 320, (t+1)*80). Each frame is
multiplied by a periodic Hann window of 320 placed at the START of the FFT buffer.

- Mel front end (the model's input): the windowed frame zero-padded to 512,
  |rfft| (magnitude, not power), Slaney mel bank (80 bands, 0..8000 Hz, area
  normalised, as librosa's default htk=False norm='slaney'), natural log of
  max(mel, 1e-5). For a signal of n samples there are ceil((n + 240) / 80)
  frames (the signal is zero-padded at the end to frames*80 samples).
- Synthesis grid (the model's output): the same frames with n_fft 320, 161 bins.
  iSTFT = irfft, times the dual window ws[n] = w[n] / sum_k w[n + k*80]^2 (= w / 1.5
  for Hann at 4x overlap), overlap-add; sample j of the overlap-add belongs to input
  sample j - 240, so istft() drops the first 240 samples, exactly as
  stft_synthesize_buffer() in C.

`python3 tools/vocoder/audio.py` runs the self-checks.
"""
import math

import numpy as np
import torch

SR = 16000
N_FFT = 320
WIN = 320
HOP = 80
N_BINS = N_FFT // 2 + 1
MEL_NFFT = 512
MEL_BINS = MEL_NFFT // 2 + 1
N_MELS = 80
FMIN = 0.0
FMAX = 8000.0
LOG_FLOOR = 1e-5
LATENCY = WIN - HOP  # samples between a frame's first sample and its hop


def hann(n=WIN):
    """Periodic Hann, computed as src/dsp/stft.c does (double, rounded to float)."""
    i = np.arange(n, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * i / n)).astype(np.float32)


def dual_window(n=WIN, hop=HOP):
    """Synthesis window of stft.c (without its 1/n_fft: torch's irfft is normalised)."""
    w = hann(n).astype(np.float64)
    ws = np.empty(n)
    for k in range(n):
        ws[k] = w[k] / sum(w[m] ** 2 for m in range(k % hop, n, hop))
    return ws.astype(np.float32)


# ----------------------------------------------------------- Slaney mel bank

_F_SP = 200.0 / 3.0
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = math.log(6.4) / 27.0


def mel_from_hz(hz):
    return hz / _F_SP if hz < _MIN_LOG_HZ else _MIN_LOG_MEL + math.log(hz / _MIN_LOG_HZ) / _LOGSTEP


def mel_to_hz(mel):
    return mel * _F_SP if mel < _MIN_LOG_MEL else _MIN_LOG_HZ * math.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))


def mel_bank(sr=SR, n_fft=MEL_NFFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX):
    """(n_mels, n_fft//2+1) float32, the arithmetic of src/dsp/mel.c step by step."""
    lo, hi = mel_from_hz(fmin), mel_from_hz(fmax)
    hz = [mel_to_hz(lo + (hi - lo) * i / (n_mels + 1)) for i in range(n_mels + 2)]
    bins = n_fft // 2 + 1
    w = np.zeros((n_mels, bins), np.float64)
    for b in range(n_mels):
        enorm = 2.0 / (hz[b + 2] - hz[b])
        for k in range(bins):
            f = k * sr / n_fft
            up = (f - hz[b]) / (hz[b + 1] - hz[b])
            down = (hz[b + 2] - f) / (hz[b + 2] - hz[b + 1])
            w[b, k] = max(0.0, min(up, down)) * enorm
    return w.astype(np.float32)


def band_centres_hz(n_mels=N_MELS, fmin=FMIN, fmax=FMAX):
    lo, hi = mel_from_hz(fmin), mel_from_hz(fmax)
    return np.array([mel_to_hz(lo + (hi - lo) * (i + 1) / (n_mels + 1)) for i in range(n_mels)])


def synth_to_mel_grid():
    """(161, 257) float64: linear interpolation of a synthesis-grid amplitude
    spectrum (bins every 50 Hz) at the mel front end's bins (every 31.25 Hz):
    bin j of 512 sits at 320 j / 512 = 5 j / 8 synthesis bins (as src/models/vocoder.c)."""
    m = np.zeros((N_BINS, MEL_BINS))
    for j in range(MEL_BINS):
        k0, fr = (5 * j) // 8, (5 * j % 8) / 8.0
        m[k0, j] += 1.0 - fr
        if fr > 0:
            m[k0 + 1, j] += fr
    return m


def bands_to_synth_grid():
    """(80, 161) float64: a value per mel band -> per synthesis bin, linear in Hz
    between band centres, held flat below the first and above the last (np.interp)."""
    c = band_centres_hz()
    m = np.zeros((N_MELS, N_BINS))
    for k in range(N_BINS):
        f = k * SR / N_FFT
        if f <= c[0]:
            m[0, k] = 1.0
        elif f >= c[-1]:
            m[-1, k] = 1.0
        else:
            b = int(np.searchsorted(c, f, side="right")) - 1
            w = (f - c[b]) / (c[b + 1] - c[b])
            m[b, k], m[b + 1, k] = 1.0 - w, w
    return m


# ------------------------------------------------------------------ framing

_cache = {}


def _const(name, fn, device, dtype):
    key = (name, str(device), dtype)
    if key not in _cache:
        _cache[key] = torch.from_numpy(fn()).to(device=device, dtype=dtype)
    return _cache[key]


def n_frames(n_samples):
    """Frames the mel front end gives for n samples: ceil((n + 240) / 80)."""
    return (n_samples + LATENCY + HOP - 1) // HOP


def frames_of(x, n_fft):
    """x (..., N) with N = LATENCY + T*HOP samples (already including the 240 leading
    samples of frame 0) -> (..., T, n_fft//2+1) complex: frame t = x[t*80 : t*80+320]."""
    fr = x.unfold(-1, WIN, HOP) * _const("hann", hann, x.device, x.dtype)
    return torch.fft.rfft(fr, n=n_fft, dim=-1)


def pad_signal(x):
    """(..., n) -> (..., 240 + T*80) with T = n_frames(n): zeros in front (the
    history before time 0) and at the end (up to the last whole frame)."""
    n = x.shape[-1]
    T = n_frames(n)
    return torch.nn.functional.pad(x, (LATENCY, T * HOP - n))


def logmel_from_frames(x_padded):
    X = frames_of(x_padded, MEL_NFFT)
    mag = X.abs()
    fb = _const("mel", mel_bank, x_padded.device, x_padded.dtype)
    mel = torch.matmul(mag, fb.t())
    return torch.log(torch.clamp(mel, min=LOG_FLOOR))


def logmel(x):
    """The front end: x (..., n) -> (..., n_frames(n), 80) natural-log mel."""
    return logmel_from_frames(pad_signal(x))


def spectrum(x):
    """The synthesis-grid spectrum of x (..., n): (..., n_frames(n), 161) complex."""
    return frames_of(pad_signal(x), N_FFT)


def istft(X, length=None):
    """(..., T, 161) complex -> (..., T*80 - 240) real, aligned with the input of
    spectrum() (the first 240 overlap-add samples, before time 0, are dropped).
    `length` truncates or zero-pads."""
    fr = torch.fft.irfft(X, n=N_FFT, dim=-1)[..., :WIN]
    fr = fr * _const("dual", dual_window, fr.device, fr.dtype)
    T = fr.shape[-2]
    lead = fr.shape[:-2]
    f = fr.reshape(-1, T, WIN).transpose(1, 2)
    out_len = (T - 1) * HOP + WIN
    y = torch.nn.functional.fold(f, output_size=(1, out_len), kernel_size=(1, WIN), stride=(1, HOP))
    y = y.reshape(*lead, out_len)[..., LATENCY:T * HOP]
    if length is not None:
        y = y[..., :length] if y.shape[-1] >= length else torch.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y


def ola(X):
    """Overlap-add of T frames without dropping anything: (..., (T-1)*80 + 320);
    sample j belongs to the frame-grid sample j (frame t starts at t*80). For
    training on crops: an interior sample equals istft()'s."""
    fr = torch.fft.irfft(X, n=N_FFT, dim=-1)[..., :WIN]
    fr = fr * _const("dual", dual_window, fr.device, fr.dtype)
    T = fr.shape[-2]
    lead = fr.shape[:-2]
    f = fr.reshape(-1, T, WIN).transpose(1, 2)
    out_len = (T - 1) * HOP + WIN
    y = torch.nn.functional.fold(f, output_size=(1, out_len), kernel_size=(1, WIN), stride=(1, HOP))
    return y.reshape(*lead, out_len)


def rtisi_la(X, lookahead, iters, mel=None, fix_db=0.0):
    """RTISI-LA (src/dsp/rtisi.c, the reference for its test): (T, 161) complex
    numpy -> the refined (T, 161) spectra, whose istft() is what the C code
    streams (delayed there by `lookahead` hops). Frame t is pushed with its
    phase as the first estimate; frames t-lookahead..t stay open and `iters`
    times each (oldest first) takes the spectrum of what all frames overlap-add
    to in its span (divided by the sum of analysis x synthesis windows present,
    where later frames are still missing), with its own magnitude; then frame
    t-lookahead is final.
    Silent frames precede the stream and `lookahead` of them flush it, as in
    C. float64.
    mel (T, 80) and fix_db > 0: before the frame about to be finished takes its
    magnitude back in the last pass, that magnitude is pulled onto the frame's
    mel, as model.Vocoder.mel_fix does but measured on what the frames now
    overlap-add to: the windowed segment's 512-point |FFT| through the mel bank,
    the error per band clamped to +-fix_db, spread over the bins by band
    centre (bands_to_synth_grid), times exp of it."""
    X = np.asarray(X, dtype=np.complex128)
    T, K = X.shape
    wa, ws = hann().astype(np.float64), dual_window().astype(np.float64)
    ww = (wa * ws).astype(np.float32).astype(np.float64)
    L = lookahead
    P = WIN // HOP - 1 + L  # silence before the stream: silent frames, open or finished
    Xs = np.concatenate([np.zeros((P, K), np.complex128), X, np.zeros((L, K), np.complex128)])
    mag = np.abs(Xs)
    cur = Xs.copy()
    fix = mel is not None and fix_db > 0 and iters > 0
    if fix:
        fb = mel_bank().astype(np.float64)
        b2s = bands_to_synth_grid()
        lim = fix_db * math.log(10.0) / 20.0
        floor = np.full((1, N_MELS), math.log(LOG_FLOOR))
        mels = np.concatenate([np.repeat(floor, P, 0), np.asarray(mel, np.float64), np.repeat(floor, L, 0)])
    T = P + T
    done = np.zeros((T + L) * HOP + WIN)
    wdone = np.zeros_like(done)
    fr = {}

    def synth(j):
        fr[j] = np.fft.irfft(cur[j], n=N_FFT)[:WIN] * ws

    for t in range(T + L):
        synth(t)
        opened = list(range(max(0, t - L), t + 1))
        for it in range(iters):
            for j in opened:
                seg = done[j * HOP:j * HOP + WIN].copy()
                wsum = wdone[j * HOP:j * HOP + WIN].copy()
                for i in opened:
                    d = (i - j) * HOP
                    if 0 <= d < WIN:
                        seg[d:] += fr[i][:WIN - d]
                        wsum[d:] += ww[:WIN - d]
                    elif -WIN < d < 0:
                        seg[:WIN + d] += fr[i][-d:]
                        wsum[:WIN + d] += ww[-d:]
                seg = np.where(wsum > 1e-3, seg / np.maximum(wsum, 1e-3), 0.0)
                F = np.fft.rfft(seg * wa, n=N_FFT)
                if fix and j == t - L and it == iters - 1:
                    m = np.log(np.maximum(np.abs(np.fft.rfft(seg * wa, n=MEL_NFFT)) @ fb.T, LOG_FLOOR))
                    mag[j] = mag[j] * np.exp(np.clip(mels[j] - m, -lim, lim) @ b2s)
                a = np.abs(F)
                ok = a > 1e-30
                cur[j, ok] = mag[j, ok] * F[ok] / a[ok]
                synth(j)
        if t - L >= 0:
            j = t - L
            done[j * HOP:j * HOP + WIN] += fr.pop(j)
            wdone[j * HOP:j * HOP + WIN] += ww
    return cur[P:T]


# The file synthesis' mel refinement (src/models/vocoder.h: VOC_FILE_REFINE_ITERS,
# VOC_REFINE_MOMENTUM, VOC_REFINE_MAX_NEP, VOC_REFINE_PULL), as keyword arguments
# of mel_refine; without `pull` (and an anchor) it is the refinement alone.
FILE_REFINE = dict(iters=40, momentum=0.6, max_nep=3.0)
FILE_REFINE_PULL = 0.075


def mel_refine(y, mel, iters, momentum=0.0, max_nep=3.0, anchor=None, pull=0.0):
    """The file synthesis' last step (src/dsp/melrefine.c, the reference for
    its test): `iters` passes that pull the whole signal onto its mel, as the
    front end measures it. y: an istft() output of T*80 - 240 samples, mel
    (T, 80) natural-log frames. Each pass, on the padded grid (pad_signal:
    240 zeros in front, hops 3..T-1 the signal):
      mel step: every frame's 512-point spectrum Y (frames_of), its mel
        M = |Y| fb^T; per band r = ln(exp(mel) / max(M, 1e-5)) clamped to
        +-max_nep; each bin j scaled by exp(sum_b fb[b, j] r_b / sum_b fb[b, j])
        (1 where no band weighs it), then irfft, first 320 samples times the
        dual window, overlap-add, and everything outside hops 3..T-1 set to 0;
      anchor step (anchor (T, 161) log-amplitudes and pull > 0): every frame of
        that on the synthesis grid (320-point spectrum Z), each bin whose
        magnitude a exceeds 1e-15 scaled by exp(pull (anchor - ln a)) - moved
        that share of the way, in the log, towards the anchor - then the same
        overlap-add and zeros: that is z_k.
    With momentum m (fast Griffin-Lim's, on the signal) pass k > 1 hands on
    z_k + m (z_k - z_{k-1}) to the next pass instead of z_k; the result is
    z_iters. float64; returns T*80 - 240 samples."""
    mel = np.asarray(mel, np.float64)
    T = mel.shape[0]
    n = T * HOP - LATENCY
    y = np.asarray(y, np.float64)
    assert y.shape == (n,), (y.shape, n)
    if iters <= 0:
        return y.copy()
    fb = mel_bank().astype(np.float64)
    norm = fb.sum(0)
    inv = np.where(norm > 0, 1.0 / np.where(norm > 0, norm, 1.0), 0.0)
    target = np.exp(mel)
    wa, ws = hann().astype(np.float64), dual_window().astype(np.float64)
    idx = np.arange(WIN)[None, :] + HOP * np.arange(T)[:, None]
    total = (T + 3) * HOP
    use_anchor = anchor is not None and pull > 0
    if use_anchor:
        anchor = np.asarray(anchor, np.float64)
        assert anchor.shape == (T, N_BINS), anchor.shape

    def ola(fr):
        z = np.zeros(total)
        np.add.at(z, idx, fr[:, :WIN] * ws)
        z[:LATENCY] = 0.0
        z[T * HOP:] = 0.0
        return z

    s = np.zeros(total)
    s[LATENCY:LATENCY + n] = y
    zprev = None
    for k in range(1, iters + 1):
        Y = np.fft.rfft(s[idx] * wa, n=MEL_NFFT, axis=1)
        M = np.maximum(np.abs(Y) @ fb.T, LOG_FLOOR)
        r = np.clip(np.log(target / M), -max_nep, max_nep)
        z = ola(np.fft.irfft(Y * np.exp((r @ fb) * inv), n=MEL_NFFT, axis=1))
        if use_anchor:
            Z = np.fft.rfft(z[idx] * wa, n=N_FFT, axis=1)
            a = np.abs(Z)
            ok = a > 1e-15
            g = np.ones_like(a)
            g[ok] = np.exp(pull * (anchor[ok] - np.log(a[ok])))
            z = ola(np.fft.irfft(Z * g, n=N_FFT, axis=1))
        s = z + momentum * (z - zprev) if momentum and zprev is not None else z
        zprev = z
    return zprev[LATENCY:LATENCY + n]


def _self_check():
    torch.manual_seed(0)
    w = hann().astype(np.float64)
    s = sum(np.roll(w * w, k * HOP) for k in range(WIN // HOP))
    assert np.allclose(s, 1.5), "Hann^2 at 4x overlap sums to 1.5"
    assert np.allclose(dual_window(), hann() / 1.5, atol=1e-7)
    for n in (16000, 16037, 320, 81, 1):
        x = torch.randn(2, n, dtype=torch.float64)
        X = spectrum(x)
        T = n_frames(n)
        assert X.shape == (2, T, N_BINS), X.shape
        y = istft(X)
        assert y.shape[-1] == T * HOP - LATENCY >= n
        err = (y[..., :n] - x).abs().max().item()
        assert err < 1e-6, (n, err)  # float32 windows
        M = logmel(x)
        assert M.shape == (2, T, N_MELS)
    # causality: frame t depends only on samples < (t+1)*HOP
    x = torch.randn(1, 3200, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 1600:] += 1.0
    M, M2 = logmel(x), logmel(x2)
    assert torch.equal(M[:, :20], M2[:, :20]) and not torch.equal(M[:, 20], M2[:, 20])
    # frame 0 is the window over [240 zeros, x[0:80]]
    ref = torch.fft.rfft(torch.cat([torch.zeros(240, dtype=x.dtype), x[0, :80]]) * torch.from_numpy(w),
                         n=MEL_NFFT)
    assert torch.allclose(frames_of(pad_signal(x), MEL_NFFT)[0, 0], ref)
    fb = mel_bank()
    assert fb.shape == (N_MELS, MEL_BINS) and (fb.sum(1) > 0).all(), "no empty mel band"
    # unit area in Hz: sum of weights * bin spacing ~ 1 for bands well inside the range
    area = fb.sum(1) * SR / MEL_NFFT
    assert np.all(np.abs(area[5:-5] - 1) < 0.15), area
    # the mel fix's grids are np.interp's
    rng = np.random.default_rng(1)
    a = rng.random((3, N_BINS))
    want = np.stack([np.interp(np.arange(MEL_BINS) * SR / MEL_NFFT, np.arange(N_BINS) * SR / N_FFT, r) for r in a])
    assert np.allclose(a @ synth_to_mel_grid(), want, atol=1e-12)
    r = rng.standard_normal((3, N_MELS))
    want = np.stack([np.interp(np.arange(N_BINS) * SR / N_FFT, band_centres_hz(), q) for q in r])
    assert np.allclose(r @ bands_to_synth_grid(), want, atol=1e-12)
    # RTISI-LA: a consistent spectrogram stays as it is, with the mel fix too
    # when the mel is its own (the fix then only moves what overlap-add loses)
    x = torch.randn(4000, dtype=torch.float64) * torch.hann_window(4000, dtype=torch.float64)
    X = spectrum(x).numpy()
    for mel, tag in ((None, "plain"), (logmel(x).numpy(), "mel fix")):
        Y = rtisi_la(X, 3, 2, mel, 12.0)
        e = np.sum(np.abs(Y - X) ** 2) / np.sum(np.abs(X) ** 2)
        assert e < 1e-5, (tag, e)
    print("audio self-check OK: STFT round trip exact, mel front end causal, "
          f"{N_MELS} bands, narrowest {int((fb > 0).sum(1).min())} bins")


if __name__ == "__main__":
    _self_check()
