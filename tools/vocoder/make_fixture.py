"""Golden-test fixture for the C vocoder (tests/test_vocoder.c): a small
random-weight network of the shipped architecture, exported exactly as
export.py does, plus an input and PyTorch's answers.

    /usr/bin/python3 tools/vocoder/make_fixture.py [--phase atan2|diff] [--out PATH]

(--phase diff: tests/fixtures/vocoder/small-diff.osw, the phase-difference
heads, the mel fix (model.Vocoder.mel_fix, MEL_FIX_DB) and RTISI-LA (look-ahead
2, 2 passes) in the synthesis, so out.wav is
model.synth's; it has no out.re/out.im but out.dt, out.df (float32, what the integration reads) and
out.phase, model.integrate_phase of exactly those values.)

Tensors besides the network's:
  input.wav     (N)         0.4 s of a voice-like test signal, 16 kHz
  input.mel     (T, 80)     audio.logmel(input.wav), T = ceil((N + 240) / 80)
  out.logamp    (T, 161)    the network's log-amplitude for input.mel (whole sequence)
  out.re, out.im (T, 161)   the complex spectrum exp(min(logamp, max)) e^{j phase}
  out.wav       (T*80-240)  audio.istft of that spectrum (covers input.wav and more)
(--phase diff also: out_file.wav, the file synthesis: RTISI-LA 8 x 16, then
the mel refinement, audio.mel_refine with FILE_REFINE and FILE_REFINE_PULL anchored
to out.logamp; out.refined, the mel refinement alone of out.wav onto input.mel)
The references are computed in float64 from the float32 weights and input,
so they are PyTorch's exact answer for the stored values. The network is
deliberately smaller than the shipped one (and uses other kernel sizes and
lookahead, all read from the metadata) to keep the file small.

Run by hand after a change to the architecture; the result is committed so
the tests need no PyTorch.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import audio as A  # noqa: E402
import export as E  # noqa: E402
import model as M  # noqa: E402
import osw  # noqa: E402

CFG = dict(dim=16, hidden=24, amp_blocks=2, pha_blocks=2, k_in=7, k_dw=5, lookahead=3)
SECONDS = 0.4
MEL_FIX_DB = 30.0  # diff fixture: a third of its bins' corrections at the clamp


def test_signal(n, seed=7):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / A.SR
    f0 = 140 + 25 * np.sin(2 * np.pi * 3 * t)
    ph = 2 * np.pi * np.cumsum(f0) / A.SR
    x = sum(0.3 / k * np.sin(k * ph) * (1 + 0.3 * np.sin(2 * np.pi * (0.7 + k) * t)) for k in range(1, 25))
    env = np.minimum(1, t / 0.05) * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2)
    x = x * env + 0.01 * rng.standard_normal(n)
    x[-800:] *= np.linspace(1, 0, 800)
    return x.astype(np.float32)


# RTISI-LA look-ahead and passes of the file synthesis (VOC_FILE_RTISI_LOOKAHEAD/ITERS)
FILE_RTISI = (8, 16)
# then its mel refinement for a model with the mel fix: audio.FILE_REFINE and
# FILE_REFINE_PULL

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="")
    ap.add_argument("--phase", default="atan2", choices=["atan2", "diff"])
    a = ap.parse_args()
    if not a.out:
        a.out = "tests/fixtures/vocoder/small.osw" if a.phase == "atan2" else "tests/fixtures/vocoder/small-diff.osw"
    torch.manual_seed(1234)
    diff = a.phase == "diff"  # and RTISI-LA in the synthesis
    m = M.build(dict(CFG, phase=a.phase, tol_db=40.0, rtisi_lookahead=2 if diff else 0, rtisi_iters=2 if diff else 0,
                     mel_fix_db=MEL_FIX_DB if diff else 0.0))
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name.endswith(".gamma"):
                p.uniform_(0.5, 1.5)        # folded into pw2: must not be 1
            else:
                p.add_(0.3 * torch.randn_like(p))
    m.eval()
    tensors = E.export_tensors(m)
    folded = E.load_folded(m, tensors).double()  # exactly the stored float32 values

    n = int(SECONDS * A.SR)
    wav = test_signal(n)
    with torch.no_grad():
        mel = A.logmel(torch.from_numpy(wav).double()[None]).float()  # the C front end's job
        logamp, phase, aux = folded(mel.double())
        X = folded.spectrum(logamp, phase)
        y = folded.synth(logamp, phase, mel.double() if m.cfg["mel_fix_db"] > 0 else None)
    T = mel.shape[1]
    assert T == A.n_frames(n) and y.shape[-1] == T * A.HOP - A.LATENCY
    print(f"logamp range {logamp.min().item():.2f} .. {logamp.max().item():.2f} "
          f"(clamped at {m.cfg['logamp_max']})")
    if m.cfg["mel_fix_db"] > 0:
        with torch.no_grad():
            (raw,) = folded.amp(folded.features(mel.double()))
            x = folded.mel_fix(raw, mel.double()) - raw
        frac = float((x.abs() > 0.999 * m.cfg["mel_fix_db"] * math.log(10) / 20).double().mean())
        print(f"mel fix: correction up to {x.abs().max().item():.2f} nepers, {100 * frac:.0f} % of bins at the clamp")
    tensors["input.wav"] = wav
    tensors["input.mel"] = mel[0].numpy().astype(np.float32)
    tensors["out.logamp"] = logamp[0].numpy().astype(np.float32)
    tensors["out.re"] = X.real[0].numpy().astype(np.float32)
    tensors["out.im"] = X.imag[0].numpy().astype(np.float32)
    tensors["out.wav"] = y[0].numpy().astype(np.float32)
    if m.cfg["rtisi_iters"] > 0:
        # the file synthesis (src/models/vocoder.h, VOC_FILE_RTISI_*: `oscine vocode`, resynth
        # in a chain that is not low-latency): the same spectra, longer RTISI-LA
        Xf = A.rtisi_la(X[0].numpy(), FILE_RTISI[0], FILE_RTISI[1], mel[0].double().numpy(),
                        m.cfg["mel_fix_db"])
        yf = A.istft(torch.from_numpy(Xf)[None])[0].numpy()
        if m.cfg["mel_fix_db"] > 0:
            anchor = np.minimum(logamp[0].numpy(), m.cfg["logamp_max"])
            yf = A.mel_refine(yf, mel[0].double().numpy(), anchor=anchor, pull=A.FILE_REFINE_PULL, **A.FILE_REFINE)
        tensors["out_file.wav"] = yf.astype(np.float32)
    if m.cfg["mel_fix_db"] > 0:
        # the mel refinement alone (src/dsp/melrefine.c), on float32 input: out.wav
        # (this random network's synthesis, far from its mel) pulled onto input.mel
        # and anchored to out.logamp (float32, as C reads them)
        y32 = tensors["out.wav"].astype(np.float64)
        anchor32 = np.minimum(tensors["out.logamp"].astype(np.float64), m.cfg["logamp_max"])
        r = A.mel_refine(y32, mel[0].double().numpy(), anchor=anchor32, pull=A.FILE_REFINE_PULL, **A.FILE_REFINE)
        m0 = A.logmel(torch.from_numpy(y32)).numpy()
        m1 = A.logmel(torch.from_numpy(r)).numpy()
        ref = mel[0].double().numpy()
        print(f"mel refinement of out.wav: mel L1 {np.abs(m0 - ref).mean():.3f} -> {np.abs(m1 - ref).mean():.3f} nepers")
        tensors["out.refined"] = r.astype(np.float32)
    if m.diff:  # the integration alone, on float32 inputs (C's phaseint gets exactly these)
        f32 = [v[0].numpy().astype(np.float32) for v in (logamp, aux[0], aux[1])]
        tensors["out.dt"], tensors["out.df"] = f32[1], f32[2]
        ph = M.integrate_phase(*(v[None].astype(np.float64) for v in f32), m.cfg["tol_db"])
        tensors["out.phase"] = ph[0].astype(np.float32)
        del tensors["out.re"], tensors["out.im"]  # size: out.wav checks the spectrum
    meta = E.meta_for(m, {"training_data": "none: random weights (golden-test fixture)",
                          "training_command": "tools/vocoder/make_fixture.py",
                          "torch": torch.__version__})
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    size = os.path.getsize(a.out)
    print(f"wrote {a.out}: {T} frames, {sum(v.size for k, v in tensors.items() if '.' in k and not k.startswith(('input', 'out')))}"
          f" network parameters, {size} bytes")
    if size > 500 * 1024:
        raise SystemExit("fixture over 500 KB")


if __name__ == "__main__":
    main()
