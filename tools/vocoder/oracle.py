#!/usr/bin/python3
"""Where the vocoder's mel-cepstral distortion comes from: the shipped synthesis
beside syntheses that take the amplitude or the phase from the reference.

    /usr/bin/python3 tools/vocoder/oracle.py [--model models/vocoder-16k.osw] [--utts 12]

On the first --utts of tools/eval_vocoder's 24 dev utterances (same choice, same
metrics: its lsd() and mcd()), through the model in PyTorch:
  shipped                 `oscine vocode` (the C file synthesis: RTISI-LA 8 x 16, then
                          40 passes of the mel refinement, pulled towards the
                          network's amplitude)
  shipped_no_refine       the same with --refine 0 (RTISI-LA 8 x 16 alone)
  griffin_lim             eval_vocoder's baseline: mel pseudo-inverse, 100 iterations
  griffin_lim+refine      that, then the shipped mel refinement (audio.mel_refine,
                          40 passes, momentum 0.6; no pull, Griffin-Lim having no
                          network amplitude): what the refinement does alone
  true_amp+pred_phase     the reference's |STFT| with the model's phase differences,
                          integrated in the order of the true amplitude, RTISI-LA 8 x 16
  true_amp+gl             the reference's |STFT|, Griffin-Lim from random phase (100)
  pred_amp+true_phase     the model's amplitude (mel fix applied) with the reference's
                          phase, plain overlap-add; and _rtisi: then RTISI-LA 8 x 16
                          with the mel fix, as the file synthesis runs it
"""
import argparse
import importlib.machinery
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import audio as A  # noqa: E402
import data as D  # noqa: E402
import model as M  # noqa: E402
import osw  # noqa: E402
import trainlib  # noqa: E402

X_ = importlib.machinery.SourceFileLoader("vocoder_export", os.path.join(HERE, "export.py")).load_module()
EV = importlib.machinery.SourceFileLoader("eval_vocoder", os.path.join(ROOT, "tools", "eval_vocoder")).load_module()




def gl_true(mag, n, iters=100, seed=0, momentum=0.99):
    """Fast Griffin-Lim on the synthesis grid from the magnitude [T, 161]."""
    g = torch.Generator().manual_seed(seed)
    S = mag * torch.exp(2j * np.pi * torch.rand(mag.shape, generator=g, dtype=torch.float64))
    prev = torch.zeros_like(S)
    for _ in range(iters):
        R = A.spectrum(A.istft(S, n))
        acc = R - momentum / (1 + momentum) * prev
        prev = R
        S = mag * acc / (acc.abs() + 1e-16)
    return A.istft(S, n).numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "vocoder-16k.osw"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "oscine"))
    ap.add_argument("--data", default=D.default_data_dir())
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--utts", type=int, default=12)
    a = ap.parse_args()
    trainlib.blas_rerun(1)
    torch.set_num_threads(1)
    tensors, meta = osw.read_osw(a.model)
    net = X_.load_folded(M.build(X_.cfg_from_meta(meta)), tensors)
    tol = net.cfg["tol_db"]
    corpus = D.Corpus(a.data, a.cache, verbose=False)
    ids = corpus.split(dev=True)
    ids = [ids[k] for k in np.linspace(0, len(ids) - 1, min(24, len(ids))).astype(int)][:a.utts]
    res = {}
    with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
        for u, i in enumerate(ids):
            audio, _ = corpus.utt(i)
            x = audio[A.LATENCY:].astype(np.float64)
            n = len(x)
            rw, npy, vw, v0 = (os.path.join(tmp, f) for f in ("r.wav", "r.npy", "v.wav", "v0.wav"))
            sf.write(rw, x.astype(np.float32), A.SR, subtype="FLOAT")
            subprocess.run([a.binary, "mel", rw, npy, "--quiet"], check=True)
            subprocess.run([a.binary, "vocode", npy, vw, "--model", a.model, "--bits", "float", "--quiet"],
                           check=True)
            subprocess.run([a.binary, "vocode", npy, v0, "--model", a.model, "--bits", "float", "--quiet",
                            "--refine", "0"], check=True)
            mel = np.load(npy)
            X = A.spectrum(torch.from_numpy(x)).numpy()
            with torch.no_grad():
                la, _, (dt, df) = net(torch.from_numpy(mel)[None].float())
            la = la[0].double().numpy()
            T = min(la.shape[0], X.shape[0])
            true_la = np.log(np.maximum(np.abs(X[:T]), 1e-12))
            ph = M.integrate_phase(true_la[None], dt.double().numpy()[:, :T], df.double().numpy()[:, :T], tol)[0]

            def syn(S, rtisi=True, fix_mel=None):
                if rtisi:
                    S = A.rtisi_la(S, 8, 16, fix_mel, 12.0 if fix_mel is not None else 0.0)
                return A.istft(torch.from_numpy(S), n).numpy()
            gl = EV.griffin_lim(mel, 100)
            outs = {
                "shipped": sf.read(vw, dtype="float32")[0][:n].astype(np.float64),
                "shipped_no_refine": sf.read(v0, dtype="float32")[0][:n].astype(np.float64),
                "griffin_lim": gl[:n],
                "griffin_lim+refine": A.mel_refine(gl[:mel.shape[0] * A.HOP - A.LATENCY], mel, **A.FILE_REFINE)[:n],
                "true_amp+pred_phase": syn(np.abs(X[:T]) * np.exp(1j * ph)),
                "true_amp+gl": gl_true(torch.from_numpy(np.abs(X)), n),
                "pred_amp+true_phase": syn(np.exp(la[:T]) * np.exp(1j * np.angle(X[:T])), rtisi=False),
                "pred_amp+true_phase_rtisi": syn(np.exp(la[:T]) * np.exp(1j * np.angle(X[:T])), fix_mel=mel[:T]),
            }
            gate = EV.speech_frames(mel)
            for k, y in outs.items():
                res.setdefault(k, []).append((EV.lsd(x, y, gate), EV.mcd(x, y)))
            print(f"[{u + 1}/{len(ids)}] {corpus.paths[i]}: " +
                  " ".join(f"{k} {v[-1][1]:.3f}" for k, v in res.items()), flush=True)
    gl = np.mean([r[1] for r in res["griffin_lim"]])
    print(f"\n| synthesis ({len(ids)} dev utterances) | MCD | vs Griffin-Lim | LSD (dB) |\n|---|---:|---:|---:|")
    for k, v in res.items():
        lsd, mcd = np.mean(v, axis=0)
        print(f"| {k} | {mcd:.3f} | {100 * (1 - mcd / gl):+.0f} % | {lsd:.2f} |")


if __name__ == "__main__":
    main()
