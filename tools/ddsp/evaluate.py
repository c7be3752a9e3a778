#!/usr/bin/python3
"""Evaluate a DDSP instrument model on its held-out material, through the C
code as shipped, against the 1/k-harmonic baseline.

    /usr/bin/python3 tools/ddsp/evaluate.py violin --model models/ddsp-violin.osw \
        [--ckpt /work/ckpt/ddsp/violin/best.pt] [--out build/ddsp-eval]

For every held-out file (data.HELD_OUT): `oscine transfer FILE --model MODEL`
resynthesises it from its own f0 and loudness (the C feature trackers,
decoder, harmonic + noise synth and reverb, at 16 kHz, latency compensated;
the gate open, --gate-db -80, so the model sees every frame as in training:
the default -60 dB gate silences the quiet frames, whose reverberant noise
floor the log-magnitude term counts: about +0.6 on the distance);
the baseline is model.baseline_audio (fixed 1/k distribution, no noise, no
reverb, same f0 and loudness, its gain the best of a grid). Both are scored
with the training loss (multi-scale spectral distance, FFT 2048..64, linear
+ log magnitude) on the same 4 s segments as train.py's evaluation; with
--ckpt the PyTorch model's own score is printed beside them. Writes, per
file, the three WAVs and a spectrogram PNG (original, resynthesis,
baseline) to --out.
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import soundfile as sf
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tools/
import data as D  # noqa: E402
import model as M  # noqa: E402
import runinfo  # noqa: E402
import train as T  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))


def seg_distance(a, b, frames=T.SEG_FRAMES):
    """Mean spectral distance over whole 4 s segments of two aligned signals."""
    L = frames * M.HOP
    n = min(len(a), len(b)) // L
    d = [float(M.spectral_loss(torch.from_numpy(a[k * L:(k + 1) * L])[None],
                               torch.from_numpy(b[k * L:(k + 1) * L])[None])) for k in range(n)]
    return float(np.mean(d)), n


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instrument")
    ap.add_argument("--model", required=True, help=".osw to evaluate (through the C code)")
    ap.add_argument("--ckpt", help="also score the PyTorch checkpoint")
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "ddsp-eval"))
    ap.add_argument("--oscine", default=os.environ.get("OSCINE_BIN",
                                                       os.path.join(ROOT, "build", "oscine")))
    a = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(a.out, exist_ok=True)
    corpus = D.Corpus(a.instrument, a.data, a.cache)
    print(corpus.summary)
    H = 60
    model = None
    if a.ckpt:
        ck = runinfo.load(a.ckpt)
        model = M.build(ck["model_cfg"])
        model.load_state_dict(ck["model"])
        model.eval()
        H = model.cfg["n_harmonics"]
        print(f"checkpoint {a.ckpt}: step {ck['step']}")
    gains = 10.0 ** (np.arange(-12, 13, 2) / 10.0)
    tot = {"c": [], "base": [], "torch": []}
    for it in corpus.held:
        name = os.path.splitext(os.path.basename(it["path"]))[0]
        resyn = os.path.join(a.out, f"{name}-resynth.wav")
        r = subprocess.run([a.oscine, "transfer", it["path"], resyn, "--model", a.model,
                            "--gate-db", "-80", "--bits", "float", "--quiet"],
                           capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(f"oscine transfer: {r.stderr.strip()}")
        y, sr = sf.read(resyn, dtype="float32")
        assert sr == M.MODEL_RATE, sr
        x = it["audio"]
        dc, n = seg_distance(y, x)
        f0 = torch.from_numpy(it["f0p"])[None]
        ld = torch.from_numpy(it["loud"])[None]
        with torch.no_grad():
            b1 = M.baseline_audio(f0, ld, H)[0].numpy()
        best = min(((seg_distance(g * b1, x)[0], g) for g in gains))
        db, g = best
        sf.write(os.path.join(a.out, f"{name}-baseline.wav"), (g * b1).astype(np.float32),
                 M.MODEL_RATE, subtype="FLOAT")
        line = f"{name}: {n} segments: C resynthesis {dc:.4f}, baseline {db:.4f} (gain {g:.2f})"
        line += f", {100 * (1 - dc / db):.1f} % lower"
        if model is not None:
            segs = T.segments([it])
            dt = T.evaluate(model, segs, "cpu", baseline=False)["model"]
            tot["torch"].append((dt, n))
            line += f"; PyTorch {dt:.4f}"
        print(line, flush=True)
        tot["c"].append((dc, n))
        tot["base"].append((db, n))
        orig = os.path.join(a.out, f"{name}-original.wav")
        sf.write(orig, x, M.MODEL_RATE, subtype="FLOAT")
        subprocess.run([a.oscine, "spectrogram", os.path.join(a.out, f"{name}.png"), orig, resyn,
                        os.path.join(a.out, f"{name}-baseline.wav"), "--max-hz", "8000",
                        "--titles", "original (held out),oscine resynthesis,1/k baseline"],
                       check=False, capture_output=True)
    w = lambda k: sum(d * n for d, n in tot[k]) / sum(n for _, n in tot[k])  # noqa: E731
    c, b = w("c"), w("base")
    msg = (f"held-out {a.instrument}: C resynthesis {c:.4f}, baseline {b:.4f}: "
           f"{100 * (1 - c / b):.1f} % lower (target 40 %)")
    if tot["torch"]:
        msg += f"; PyTorch {w('torch'):.4f}"
    print(msg)


if __name__ == "__main__":
    main()
