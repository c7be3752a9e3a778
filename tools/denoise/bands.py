#!/usr/bin/python3
"""Where in frequency the denoiser wins and loses SI-SDR, through the C binary.

    /usr/bin/python3 tools/denoise/bands.py [--model models/denoise-16k.osw] [--sets pairs,mix]

For every dev pair and dev mixture the output of `oscine denoise` is scored
(SI-SDR against the clean reference), then scored again with one frequency
band swapped (a brick-wall split of the whole signal's FFT, zero phase):

  noisy  the band taken from the noisy input instead: > 0 means the model does
         worse than leaving that band alone
  oracle the band taken from the clean reference: how much SI-SDR a perfect
         band would add

Bands: 0-80, 80-160, 160-300, 300-1000, 1000-2000, 2000-4000, 4000-8000 Hz.
Pairs are listed one by one, mixtures averaged per input SNR and noise family.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import data as D  # noqa: E402
from evaluate import si_sdr  # noqa: E402  (the training evaluations' SI-SDR)

BANDS = [(0, 80), (80, 160), (160, 300), (300, 1000), (1000, 2000), (2000, 4000), (4000, 8000)]


def band(x, lo, hi, sr):
    X = np.fft.rfft(x)
    f = np.arange(len(X)) * sr / len(x)
    return np.fft.irfft(X * ((f >= lo) & (f < hi)), len(x))


def analyse(noisy, clean, sr, binary, model, tmp):
    """[SI-SDRi, then per band: noisy-swap change, oracle-swap change]."""
    i, o = os.path.join(tmp, "in.wav"), os.path.join(tmp, "out.wav")
    sf.write(i, noisy.astype(np.float32), sr, subtype="FLOAT")
    subprocess.run([binary, "denoise", i, o, "--bits", "float", "-q", "--model", model], check=True)
    e, _ = sf.read(o)
    e, c, n = e.astype(np.float64), clean.astype(np.float64), noisy.astype(np.float64)
    L = min(len(e), len(c))
    e, c, n = e[:L], c[:L], n[:L]
    base = si_sdr(e, c)
    row = [base - si_sdr(n, c)]
    for lo, hi in BANDS:
        if lo >= sr / 2:
            row += [0.0, 0.0]
            continue
        eb = band(e, lo, hi, sr)
        row.append(si_sdr(e - eb + band(n, lo, hi, sr), c) - base)
        row.append(si_sdr(e - eb + band(c, lo, hi, sr), c) - base)
    return base, row


def fmt(row):
    return " ".join(f"{row[1 + 2 * k]:+6.2f}/{row[2 + 2 * k]:+5.2f}" for k in range(len(BANDS)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "denoise-16k.osw"))
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "oscine"))
    ap.add_argument("--data", default=D.default_data_dir())
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--sets", default="pairs,mix")
    a = ap.parse_args()
    sets = a.sets.split(",")
    head = " " * 37 + "".join(f"{f'{lo}-{hi}':>13s}" for lo, hi in BANDS)
    print("per band: SI-SDR change with the band from the noisy input / from the clean reference (dB)")
    with tempfile.TemporaryDirectory() as tmp:
        if "pairs" in sets:
            print("\ndev pairs" + " " * 15 + "SI-SDR  SI-SDRi\n" + head)
            for name, noisy, clean in D.dev_pairs(a.data):
                base, row = analyse(noisy, clean, D.SR, a.binary, a.model, tmp)
                short = name.split("/")[0][:8] + "/" + name.split("/")[-1][:14]
                print(f"{short:23s} {base:6.2f} {row[0]:+6.2f}  {fmt(row)}")
        if "mix" in sets:
            corpus = D.Corpus(a.data, a.cache, verbose=False)
            groups = {}
            for name, snr, noisy, clean in D.dev_mixtures(corpus):
                fam = name.split("+")[1].split("/")[0]
                _, row = analyse(noisy, clean, D.SR, a.binary, a.model, tmp)
                groups.setdefault((snr, fam[:14]), []).append(row)
                groups.setdefault((snr, "all"), []).append(row)
            print("\ndev mixtures  n   SI-SDRi\n" + head)
            for (snr, fam), rows in sorted(groups.items()):
                m = np.mean(rows, axis=0)
                print(f"{snr:+3d} dB {fam:14s} {len(rows):3d}    {m[0]:+6.2f}  {fmt(m)}")


if __name__ == "__main__":
    main()
