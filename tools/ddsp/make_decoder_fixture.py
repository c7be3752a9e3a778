#!/usr/bin/python3
"""Golden-test fixture for the C DDSP decoder and voice (tests/test_ddsp.c):
a small random-weight model of the shipped architecture, exported exactly as
export.py does, plus inputs and PyTorch's outputs.

    /usr/bin/python3 tools/ddsp/make_decoder_fixture.py [--out tests/fixtures/ddsp/decoder.osw]
    /usr/bin/python3 tools/ddsp/make_decoder_fixture.py --full build/ddsp-random.osw  # for benches

Outputs are computed in float64 from the float32 weights the file stores:
  out.y      [F, 1 + H + NB]  decoder outputs per frame (the GRU state carried)
  out.amp    [F], out.dist [F, H], out.mags [F, NB]   the synth controls
  out.dry    [F * HOP]  harmonic + filtered noise at 16 kHz, the noise being
             the C generator with seed `noise_seed` (dsp.noise_uniform)
  out.audio  [F * HOP]  dry + dry conv reverb.ir
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
import dsp  # noqa: E402
import export as E  # noqa: E402
import model as M  # noqa: E402
import osw  # noqa: E402

CFG = dict(in_hidden=16, in_layers=2, gru=24, out_hidden=32, out_layers=2, n_harmonics=20,
           n_bands=17, reverb_length=400)
FRAMES = 100
SEED = 4242
MAX_BYTES = 300 * 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.dirname(HERE)),
                                                  "tests", "fixtures", "ddsp", "decoder.osw"))
    ap.add_argument("--full", metavar="OUT",
                    help="instead: write random weights of the shipped size to OUT (for "
                         "bench/bench_synth.c; not a fixture)")
    a = ap.parse_args()
    if a.full:
        torch.manual_seed(1)
        m = M.build()
        meta = E.model_meta(m, instrument="random", loudness_ref_db="0.0",
                            training_data="none: random weights of the shipped size",
                            training_command="tools/ddsp/make_decoder_fixture.py --full")
        osw.write_osw(a.full, E.export_tensors(m), meta)
        print(f"wrote {a.full}: {m.n_params()} params (random, shipped size)")
        return
    torch.manual_seed(777)
    m = M.build(CFG)
    with torch.no_grad():
        for name, p in m.named_parameters():
            if name == "reverb_ir":
                t = torch.arange(p.numel()) / M.MODEL_RATE
                p.copy_(0.05 * torch.randn(p.numel()) * torch.exp(-t / 0.01))
            else:
                p.add_(0.2 * torch.randn_like(p))  # LayerNorm gains and biases off their init
        # noise loud enough to be compared (the trained bias -5 leaves it near 0 here)
        m.decoder.dense.bias[1 + CFG["n_harmonics"]:] += 2.0
        for p in m.parameters():  # what the file stores
            p.copy_(p.float())
    m = m.double().eval()

    k = np.arange(FRAMES)
    f0 = 150.0 * 6.0 ** (k / (FRAMES - 1)) * (1 + 0.01 * np.sin(2 * np.pi * 5 * k / M.FRAME_RATE))
    ld = -70.0 + 75.0 * np.abs(np.sin(np.pi * k / (FRAMES - 1))) ** 0.5 + 3 * np.cos(k / 3.0)
    f0 = np.asarray(f0, np.float32).astype(np.float64)
    ld = np.asarray(ld, np.float32).astype(np.float64)
    f0t, ldt = torch.from_numpy(f0)[None], torch.from_numpy(ld)[None]
    noise = torch.from_numpy(dsp.noise_uniform(SEED, FRAMES * M.HOP).astype(np.float64))
    with torch.no_grad():
        y, _ = m.decoder(f0t, ldt)
        amp, dist, mags, _ = m.controls(f0t, ldt)
        audio, harm, noi = m(f0t, ldt, noise=noise)
    dry = harm + noi

    tensors = E.export_tensors(m)
    tensors.update({
        "in.f0": f0.astype(np.float32), "in.loudness": ld.astype(np.float32),
        "out.y": y[0].numpy().astype(np.float32), "out.amp": amp[0].numpy().astype(np.float32),
        "out.dist": dist[0].numpy().astype(np.float32),
        "out.mags": mags[0].numpy().astype(np.float32),
        "out.dry": dry[0].numpy().astype(np.float32),
        "out.audio": audio[0].numpy().astype(np.float32),
    })
    meta = E.model_meta(m, instrument="fixture", loudness_ref_db="0.0", f0_min_hz="100.0",
                        f0_max_hz="1000.0", noise_seed=str(SEED),
                        training_data="none: random weights (golden-test fixture)",
                        training_command="tools/ddsp/make_decoder_fixture.py")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    size = os.path.getsize(a.out)
    if size > MAX_BYTES:
        raise SystemExit(f"{a.out}: {size} bytes, over the {MAX_BYTES} budget")
    print(f"wrote {a.out}: {FRAMES} frames, {m.n_params()} params, {size} bytes; "
          f"audio rms {float(audio.pow(2).mean().sqrt()):.4f}, "
          f"noise share {float(noi.pow(2).mean() / dry.pow(2).mean()):.3f}")


if __name__ == "__main__":
    main()
