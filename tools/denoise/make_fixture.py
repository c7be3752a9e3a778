"""Golden-test fixture for the C denoiser: a small random-weight model of the
shipped architecture (batch norm with random statistics, non-zero FSMN
memories), exported exactly as export.py does, plus an input and PyTorch's
outputs (mask per frame, and the enhanced waveform).

    /usr/bin/python3 tools/denoise/make_fixture.py [--out tests/fixtures/denoise/small.osw]

Run by `make fixtures`; the result is committed so tests need no PyTorch.
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import export as E  # noqa: E402
import model as M  # noqa: E402
import stft as S  # noqa: E402
import osw  # noqa: E402

CFG = dict(channels=[4, 6, 8], kf=3, fsmn_freq_order=2, time_hidden=16, time_order=4,
           time_dilations=[1, 2])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/denoise/small.osw")
    a = ap.parse_args()
    torch.manual_seed(1234)
    m = M.build(CFG)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))  # memories and biases away from their zero init
        for bn in list(m.enc_bn) + list(m.dec_bn):
            bn.mean_r.normal_(0, 0.1)
            bn.mean_i.normal_(0, 0.1)
            bn.var.uniform_(0.5, 2.0)
    m.eval()
    t = torch.arange(12800) / 16000.0
    wav = (0.3 * torch.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * torch.sin(2 * np.pi * 3 * t))
           + 0.05 * torch.randn(12800))[None]
    with torch.no_grad():
        X = S.stft(wav)[0]  # (T, 161)
        mask = m.forward_mask(X[None])[0]
        enhanced = m.enhance(wav)[0]
    tensors = E.export_tensors(m)
    tensors["input.wav"] = wav[0].numpy().astype(np.float32)
    tensors["input.re"] = X.real.numpy().astype(np.float32)
    tensors["input.im"] = X.imag.numpy().astype(np.float32)
    tensors["mask.re"] = mask.real.numpy().astype(np.float32)
    tensors["mask.im"] = mask.imag.numpy().astype(np.float32)
    tensors["enhanced.wav"] = enhanced.numpy().astype(np.float32)
    cfg = m.cfg
    meta = {
        "kind": "denoise", "arch": "frcrn_causal_v1", "sample_rate": "16000",
        "n_fft": str(S.N_FFT), "win": str(S.WIN), "hop": str(S.HOP), "window": "sqrt_hann",
        "channels": ",".join(str(c) for c in cfg["channels"]), "kernel_freq": str(cfg["kf"]),
        "kernel_time": "2", "stride_freq": "2", "fsmn_freq_order": str(cfg["fsmn_freq_order"]),
        "time_fsmn_order": str(cfg["time_order"]),
        "time_fsmn_dilations": ",".join(str(d) for d in cfg["time_dilations"]),
        "time_fsmn_hidden": str(cfg["time_hidden"]), "input_compress": str(cfg["compress"]),
        "leaky_slope": str(cfg["slope"]),
        "training_data": "none: random weights (golden-test fixture)",
        "training_command": "tools/denoise/make_fixture.py",
    }
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    print(f"wrote {a.out}: {X.shape[0]} frames, {m.n_params()} params, "
          f"{os.path.getsize(a.out)} bytes")


if __name__ == "__main__":
    main()
