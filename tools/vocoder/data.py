"""Training data for the vocoder: clean speech and its log-mel frames, cached.

Speech: train/speech/{ravdess,emodb,ljspeech} of ../shared/data (manifest.csv).
The dev speakers ravdess_19, ravdess_20 and emodb_14 never enter training; they
are the dev set (model selection) here and in tools/eval_vocoder.

Each utterance (leading/trailing silence cut to 0.3 s) is stored padded on the
frame grid of audio.py: 240 zeros in front and zeros at the end up to T*80
samples, so frame t is audio[t*80 : t*80 + 320], next to its T log-mel frames
computed once with audio.logmel (float64, stored float32). The cache is one .npz
in --cache (default /work/ckpt/vocoder/cache, outside git), keyed by the
manifest and the front-end constants, so a restart takes seconds.

Crops: a random utterance (weighted by length) and a random frame-aligned start;
a crop of F frames is mel[t0:t0+F] with audio[t0*80 : (t0+F-1)*80 + 320]. A random
gain (--gain-db range) scales the audio and shifts the log mel by ln(gain)
(exact except where the mel sat at the 1e-5 floor).

pack.py packs a subset of the training utterances, losslessly, into one file for a
machine that has neither ../shared nor soundfile (a lent GPU; tools/gpu/vocoder.sh);
Corpus(pack=PATH) reads it and computes the mels again (bit for bit the cached ones).
"""
import csv
import hashlib
import os
import time

import sys

import numpy as np
import torch

import audio as A

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/
import trainlib  # noqa: E402

SPEECH_SETS = ("ravdess", "emodb", "ljspeech")
DEV_SPEAKERS = ("ravdess_19", "ravdess_20", "emodb_14")
DEFAULT_CACHE = "/work/ckpt/vocoder/cache"


def default_data_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "..", "shared", "data"))


def trim_silence(x, margin=0.3, thresh_db=-45.0):
    """Cut leading/trailing silence (20 ms frames below max-45 dB), keep `margin` s."""
    hop = 320
    n = len(x) // hop
    if n < 3:
        return x
    e = (x[: n * hop].astype(np.float32).reshape(n, hop) ** 2).mean(axis=1) + 1e-3
    db = 10 * np.log10(e)
    act = np.nonzero(db > db.max() + thresh_db)[0]
    if len(act) == 0:
        return x
    m = int(margin * A.SR)
    return x[max(0, act[0] * hop - m): min(len(x), (act[-1] + 1) * hop + m)]


def speech_rows(data_dir):
    with open(os.path.join(data_dir, "manifest.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    return [r for r in rows if r["path"].startswith("train/speech/") and r["set"] in SPEECH_SETS]


PACK_VERSION = 1


class Corpus:
    """All training-split or dev-split utterances: padded int16 audio + log mel."""

    def __init__(self, data_dir, cache_dir=DEFAULT_CACHE, verbose=True, pack=None):
        if pack is not None:
            self._load_pack(pack, verbose)
            return
        rows = speech_rows(data_dir)
        front = f"{A.SR},{A.WIN},{A.HOP},{A.MEL_NFFT},{A.N_MELS},{A.FMIN},{A.FMAX},{A.LOG_FLOOR},v1"
        sig = hashlib.sha1(("\n".join(sorted(r["path"] + r["dur_s"] for r in rows)) + front).encode()).hexdigest()[:12]
        path = os.path.join(cache_dir, f"vocoder_{sig}.npz")
        t0 = time.time()
        if not os.path.exists(path):
            auds, mels, spk, names = [], [], [], []
            import soundfile as sf   # here: a packed corpus needs no soundfile
            for r in rows:
                x, sr = sf.read(os.path.join(data_dir, r["path"]), dtype="int16", always_2d=True)
                assert sr == A.SR, (r["path"], sr)
                x = trim_silence(x.mean(axis=1).astype(np.int16) if x.shape[1] > 1 else x[:, 0])
                xf = torch.from_numpy(x.astype(np.float64) / 32768.0)
                mel = A.logmel(xf).numpy().astype(np.float32)
                pad = np.zeros(A.LATENCY + mel.shape[0] * A.HOP, np.int16)
                pad[A.LATENCY:A.LATENCY + len(x)] = x
                auds.append(pad)
                mels.append(mel)
                spk.append(r["speaker"])
                names.append(r["path"])
            aoff = np.cumsum([0] + [len(a) for a in auds]).astype(np.int64)
            moff = np.cumsum([0] + [len(m) for m in mels]).astype(np.int64)
            os.makedirs(cache_dir, exist_ok=True)
            tmp = path + ".tmp.npz"
            np.savez(tmp, audio=np.concatenate(auds), aoff=aoff, mel=np.concatenate(mels), moff=moff,
                     speakers=np.array(spk), paths=np.array(names))
            os.replace(tmp, path)
            if verbose:
                print(f"[data] decoded {len(names)} files, mels in {time.time()-t0:.0f}s -> {path}", flush=True)
        z = np.load(path)
        self.audio, self.mel = z["audio"], z["mel"]
        self.aoff, self.moff = z["aoff"], z["moff"]
        self.speakers = [str(s) for s in z["speakers"]]
        self.paths = [str(p) for p in z["paths"]]
        if verbose:
            print(f"[data] {len(self.paths)} utterances, {self.mel.shape[0] * A.HOP / A.SR / 60:.1f} min "
                  f"({path}, {time.time()-t0:.1f}s)", flush=True)

    def _load_pack(self, path, verbose):
        t0 = time.time()
        z = np.load(path, allow_pickle=False)
        if int(z["version"]) != PACK_VERSION:
            raise SystemExit(f"{path}: pack version {int(z['version'])}, this code reads {PACK_VERSION}")
        self.aoff = z["aoff"]
        self.audio = trainlib.decode_int16(z["audio_xz"], int(self.aoff[-1]))
        self.speakers = [str(s) for s in z["speakers"]]
        self.paths = [str(p) for p in z["paths"]]
        mels = []
        for i in range(len(self.paths)):
            a = self.audio[self.aoff[i]:self.aoff[i + 1]]
            T = (len(a) - A.LATENCY) // A.HOP
            # the padded utterance without its 240 leading zeros, cut to the T*80 - 240
            # samples that give T frames: the cache's mel exactly (logmel pads the same zeros)
            x = torch.from_numpy(a[A.LATENCY:T * A.HOP].astype(np.float64) / 32768.0)
            mels.append(A.logmel(x).numpy().astype(np.float32))
        self.moff = np.cumsum([0] + [len(m) for m in mels]).astype(np.int64)
        self.mel = np.concatenate(mels)
        if verbose:
            print(f"[data] pack {path}: {len(self.paths)} utterances, {self.mel.shape[0] * A.HOP / A.SR / 60:.1f} min "
                  f"({time.time()-t0:.1f}s)", flush=True)

    def utt(self, i):
        """(padded float32 audio, mel [T, 80]) of utterance i."""
        a = self.audio[self.aoff[i]:self.aoff[i + 1]].astype(np.float32) / 32768.0
        return a, self.mel[self.moff[i]:self.moff[i + 1]]

    def split(self, dev):
        return [i for i, s in enumerate(self.speakers) if (s in DEV_SPEAKERS) == dev]


class Crops:
    """Random training crops. All randomness from self.rng (saved in checkpoints)."""

    def __init__(self, corpus, frames, seed=0, gain_db=(-12.0, 6.0)):
        self.c = corpus
        self.frames = frames
        self.ids = [i for i in corpus.split(dev=False) if corpus.moff[i + 1] - corpus.moff[i] >= frames]
        n = np.array([corpus.moff[i + 1] - corpus.moff[i] - frames + 1 for i in self.ids], np.float64)
        self.p = n / n.sum()
        self.rng = np.random.default_rng(seed)
        self.gain_db = gain_db
        spk = sorted({corpus.speakers[i] for i in self.ids})
        mins = sum(corpus.moff[i + 1] - corpus.moff[i] for i in self.ids) * A.HOP / A.SR / 60
        self.summary = f"{len(self.ids)} utterances, {len(spk)} speakers, {mins:.1f} min (dev speakers held out)"

    def batch(self, b):
        """(mel [b, F, 80], audio [b, (F-1)*80 + 320]) float32 numpy."""
        F = self.frames
        L = (F - 1) * A.HOP + A.WIN
        mel = np.empty((b, F, A.N_MELS), np.float32)
        wav = np.empty((b, L), np.float32)
        for k in range(b):
            i = self.ids[self.rng.choice(len(self.ids), p=self.p)]
            T = self.c.moff[i + 1] - self.c.moff[i]
            t0 = int(self.rng.integers(0, T - F + 1))
            m = self.c.mel[self.c.moff[i] + t0: self.c.moff[i] + t0 + F]
            a = self.c.audio[self.c.aoff[i] + t0 * A.HOP: self.c.aoff[i] + t0 * A.HOP + L]
            g = float(self.rng.uniform(*self.gain_db))
            gl = g * np.log(10) / 20
            mel[k] = np.maximum(m + gl, np.log(A.LOG_FLOOR))
            wav[k] = a.astype(np.float32) * (10 ** (g / 20) / 32768.0)
        return mel, wav
