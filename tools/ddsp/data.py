#!/usr/bin/python3
"""data.py - instrument audio and its features for DDSP training.

    /usr/bin/python3 tools/ddsp/data.py violin      # build the cache, print the split

Instruments (../shared/data/instrument, 16 kHz mono FLAC):
  violin    bach10_excerpts/violin (48 excerpts) + bach_violin_solo (9 movements);
            held out for evaluation: HELD_OUT["violin"] (one whole movement)
  clarinet  bach10_excerpts/clarinet; held out: the excerpts of one piece
  saxophone bach10_excerpts/saxophone; held out: the excerpts of one piece

Targets are high-passed at 20 Hz (highpass: DC offsets and rumble).
Features come from the C extractor (`oscine features`, through dsp.features),
so training sees exactly what the synth and transfer stages see; they are
cached with the audio as .npz under --cache (outside git), keyed by file
name, size and mtime, and by the binary's features version (hop).
"""

import hashlib
import os
import sys

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dsp  # noqa: E402
import model as M  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CACHE = "/work/ckpt/ddsp/cache"

SOURCES = {
    "violin": ["instrument/bach10_excerpts/violin", "instrument/bach_violin_solo"],
    "clarinet": ["instrument/bach10_excerpts/clarinet"],
    "saxophone": ["instrument/bach10_excerpts/saxophone"],
    "bassoon": ["instrument/bach10_excerpts/bassoon"],
}
# Evaluation material that never enters training (substring of the file name).
HELD_OUT = {
    "violin": ["oliver-colbentson_bwv1006_mov6"],
    "clarinet": ["Group04-"],
    "saxophone": ["Group04-"],
    "bassoon": ["Group04-"],
}


def default_data_dir():
    for d in (os.path.join(ROOT, "..", "shared", "data"), "/work/shared/data"):
        if os.path.isdir(d):
            return os.path.abspath(d)
    return os.path.abspath(os.path.join(ROOT, "..", "shared", "data"))


def list_files(data_dir, instrument):
    if instrument not in SOURCES:
        raise SystemExit(f"unknown instrument {instrument!r} (known: {', '.join(SOURCES)})")
    files = []
    for sub in SOURCES[instrument]:
        d = os.path.join(data_dir, sub)
        if not os.path.isdir(d):
            raise SystemExit(f"data folder {d} missing")
        files += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".flac"))
    return files


def is_held_out(instrument, path):
    return any(h in os.path.basename(path) for h in HELD_OUT.get(instrument, []))


def highpass(audio, hz=20.0):
    """Zero-phase 4th-order Butterworth high-pass at 20 Hz: some recordings
    carry a DC offset or rumble that the synth can only imitate with its
    lowest noise band (0-125 Hz of rumble), so the targets leave it out."""
    from scipy.signal import butter, sosfiltfilt
    sos = butter(2, hz, btype="highpass", fs=M.MODEL_RATE, output="sos")
    return sosfiltfilt(sos, audio).astype(np.float32)


def load_item(path, cache):
    """dict(audio float32 at 16 kHz, f0, conf, loud, f0p (prepared), voiced)."""
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{int(st.st_mtime)}|hop{M.HOP}"
                       .encode()).hexdigest()[:16]
    cpath = os.path.join(cache, f"{os.path.basename(path)}.{key}.npz")
    if os.path.exists(cpath):
        z = np.load(cpath)
        item = {k: z[k] for k in z.files}
    else:
        audio, sr = sf.read(path, dtype="float32", always_2d=True)
        audio = audio.mean(1)
        if sr != M.MODEL_RATE:
            raise SystemExit(f"{path}: {sr} Hz, expected {M.MODEL_RATE}")
        f0, conf, loud = dsp.features(path, hop_ms=1000.0 * M.HOP / M.MODEL_RATE)
        item = dict(audio=audio, f0=f0, conf=conf, loud=loud)
        os.makedirs(cache, exist_ok=True)
        tmp = cpath + ".tmp.npz"
        np.savez(tmp, **item)
        os.replace(tmp, cpath)
    n = len(item["f0"])
    a = highpass(item["audio"])
    item["audio"] = np.pad(a, (0, max(0, n * M.HOP - len(a))))[:n * M.HOP]
    item["f0p"], item["voiced"] = M.prepare_f0(item["f0"], item["conf"], item["loud"])
    item["path"] = path
    return item


class Corpus:
    """Training and held-out items of one instrument, in RAM."""

    def __init__(self, instrument, data_dir=None, cache=DEFAULT_CACHE):
        data_dir = data_dir or default_data_dir()
        self.instrument = instrument
        self.train, self.held = [], []
        for p in list_files(data_dir, instrument):
            (self.held if is_held_out(instrument, p) else self.train).append(load_item(p, cache))
        if not self.train or not self.held:
            raise SystemExit(f"{instrument}: {len(self.train)} training and {len(self.held)} "
                             "held-out files; need both")
        frames = np.concatenate([it["loud"] for it in self.train])
        voiced = np.concatenate([it["voiced"] for it in self.train])
        f0s = np.concatenate([it["f0"][it["voiced"]] for it in self.train])
        self.loudness_ref_db = float(np.percentile(frames[voiced], 95)) if voiced.any() else -20.0
        self.f0_range = (float(np.percentile(f0s, 1)), float(np.percentile(f0s, 99)))
        sec = lambda items: sum(len(it["audio"]) for it in items) / M.MODEL_RATE  # noqa: E731
        self.summary = (f"{instrument}: train {len(self.train)} files {sec(self.train) / 60:.1f} min, "
                        f"held out {len(self.held)} files {sec(self.held) / 60:.1f} min "
                        f"({', '.join(os.path.basename(it['path']) for it in self.held[:3])}"
                        f"{'...' if len(self.held) > 3 else ''}); voiced {voiced.mean() * 100:.0f} %, "
                        f"loudness p95 {self.loudness_ref_db:.1f} dB, f0 p1-p99 "
                        f"{self.f0_range[0]:.0f}-{self.f0_range[1]:.0f} Hz")
        self.weights = np.array([len(it["f0"]) for it in self.train], dtype=np.float64)
        self.weights /= self.weights.sum()

    def batch(self, rng, batch, frames):
        """Random crops: f0p, loud [B, frames], audio [B, frames * HOP] (float32).
        Crops mostly avoid long silences (at most 3 tries per crop)."""
        f0 = np.zeros((batch, frames), np.float32)
        ld = np.zeros((batch, frames), np.float32)
        au = np.zeros((batch, frames * M.HOP), np.float32)
        for b in range(batch):
            for _ in range(3):
                it = self.train[rng.choice(len(self.train), p=self.weights)]
                n = len(it["f0"])
                s = int(rng.integers(0, max(1, n - frames)))
                if it["voiced"][s:s + frames].mean() > 0.3:
                    break
            m = min(frames, n - s)
            f0[b, :m] = it["f0p"][s:s + m]
            f0[b, m:] = it["f0p"][s + m - 1]
            ld[b, :m] = it["loud"][s:s + m]
            ld[b, m:] = -80.0
            au[b, :m * M.HOP] = it["audio"][s * M.HOP:(s + m) * M.HOP]
        return f0, ld, au


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instrument")
    ap.add_argument("--data", default=None)
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    a = ap.parse_args()
    c = Corpus(a.instrument, a.data, a.cache)
    print(c.summary)


if __name__ == "__main__":
    main()
