"""Fixed STFT convention shared with the C side (src/dsp).

16 kHz, periodic sqrt-Hann window of 320 samples, hop 160, n_fft 320 (161 bins).
Frame t is the LAST 320 samples ending at hop boundary t: the signal is padded on
the left with 160 zeros, then frames = unfold(320, 160), times the window, rfft.
Synthesis: irfft, times the same window, overlap-add with hop 160. sqrt-Hann^2
sums to 1 at 50 % overlap, so the output equals the input delayed by 160 samples;
istft() drops those first 160 samples so its output is aligned with the input.
Latency of a frame-by-frame model on this grid: 20 ms (one window), no lookahead.

Run `python3 tools/denoise/stft.py` for the reconstruction self-check.
"""
import torch

SR = 16000
N_FFT = 320
WIN = 320
HOP = 160
N_BINS = N_FFT // 2 + 1

_win_cache = {}


def window(device=None, dtype=torch.float32):
    key = (str(device), dtype)
    if key not in _win_cache:
        _win_cache[key] = torch.hann_window(WIN, periodic=True, dtype=dtype).sqrt().to(device)
    return _win_cache[key]


def n_frames(n_samples):
    """Frames produced for a signal of n_samples (the last partial hop is dropped)."""
    return (n_samples + HOP - WIN) // HOP + 1


def stft(x):
    """x: (..., N) real -> (..., T, 161) complex, T = n_frames(N)."""
    pad = torch.nn.functional.pad(x, (WIN - HOP, 0))
    frames = pad.unfold(-1, WIN, HOP) * window(x.device, x.dtype)
    return torch.fft.rfft(frames, n=N_FFT, dim=-1)


def istft(X, length=None):
    """X: (..., T, 161) complex -> (..., N) real aligned with the stft() input.

    Overlap-add of T frames gives (T + 1) * HOP samples delayed by HOP; the first HOP
    samples are dropped, so sample n of the output matches sample n of the input for
    n < (T - 1) * HOP (the last hop has seen only one window: in streaming it comes out
    with the next frame). `length` pads with zeros / truncates to that many samples.
    """
    frames = torch.fft.irfft(X, n=N_FFT, dim=-1)[..., :WIN] * window(X.device, X.real.dtype)
    T = frames.shape[-2]
    lead = frames.shape[:-2]
    # overlap-add with fold: (B, WIN, T) -> (B, 1, 1, (T-1)*HOP+WIN)
    f = frames.reshape(-1, T, WIN).transpose(1, 2)
    out_len = (T - 1) * HOP + WIN
    y = torch.nn.functional.fold(f, output_size=(1, out_len), kernel_size=(1, WIN), stride=(1, HOP))
    y = y.reshape(*lead, out_len)[..., WIN - HOP:]
    if length is not None:
        if y.shape[-1] >= length:
            y = y[..., :length]
        else:
            y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y


def _self_check():
    torch.manual_seed(0)
    w = window()
    assert torch.allclose(w * w + torch.roll(w * w, HOP), torch.ones(WIN), atol=1e-6), "COLA"
    for n in (16000, 16000 + 37, 320, 481):
        x = torch.randn(3, n)
        X = stft(x)
        assert X.shape == (3, n_frames(n), N_BINS), X.shape
        y = istft(X, length=n)
        valid = (n_frames(n) - 1) * HOP  # samples covered by two windows
        err = (y[..., :valid] - x[..., :valid]).abs().max().item()
        assert err < 1e-5, (n, err)
    # causality: frame t depends only on samples < (t+1)*HOP
    x = torch.randn(1, 3200)
    x2 = x.clone(); x2[:, 1600:] += 1.0
    X, X2 = stft(x), stft(x2)
    assert torch.allclose(X[:, :10], X2[:, :10]) and not torch.allclose(X[:, 10], X2[:, 10])
    # frame 0 equals rfft of [160 zeros, x[0:160]] * window
    ref = torch.fft.rfft(torch.cat([torch.zeros(160), x[0, :160]]) * w)
    assert torch.allclose(X[0, 0], ref, atol=1e-5)
    print("stft self-check OK: analysis+synthesis reconstructs the input (max err < 1e-5)")


if __name__ == "__main__":
    _self_check()
