"""Training data for the denoiser: speech and noise in RAM, mixtures made on the fly.

Splits (../shared/data/README.md): the 13 dev speakers (DEV_SPEAKERS: ravdess_19,
ravdess_20, emodb_14, the eight LibriSpeech test-other speakers and VCTK p244, p273) and
the dev noise folders household_timgrau, clearervoice_noise never enter training.
Dev mixtures: deterministic (fixed seed), dev speakers x dev noises at -5/0/5/10/15 dB.
Dev babble: dev speakers against 1-3 other dev speakers, same SNRs (dev_babble).
Dev pairs: dev/pairs/*/{noisy,clean}/NAME.flac.

Training speech: 234 speakers (ravdess, emodb, ljspeech and, since 2026-12-07, 218
LibriSpeech, VCTK and CMU ARCTIC voices of 8-15 s each). Targets and babble talkers are
drawn by speaker, not by minute (Mixer spk_pow 0), so that the many short voices count.

The decoded audio is cached as int16 .npy files in --cache (default
/work/ckpt/denoise/cache, outside git) so a restart takes seconds.

A training subset can be packed into one small file (pack.py: lossless, about 42 % of
int16; trainlib.encode_int16) for a machine that has neither ../shared nor soundfile, e.g. a lent GPU:
Corpus(pack=PATH) reads it with numpy and the standard library alone.
"""
import csv
import hashlib
import os
import time

import sys

import numpy as np
from scipy import signal

sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/
import trainlib  # noqa: E402

SR = 16000
SPEECH_SETS = ("ravdess", "emodb", "ljspeech", "librispeech", "vctk", "cmu_arctic")
# the data README's development split: never trained on
DEV_SPEAKERS = ("ravdess_19", "ravdess_20", "emodb_14",
                "librispeech_367", "librispeech_533", "librispeech_1688", "librispeech_2033",
                "librispeech_2414", "librispeech_3005", "librispeech_3080", "librispeech_3331",
                "vctk_p244", "vctk_p273")
DEV_NOISE = ("household_timgrau", "clearervoice_noise")
DEV_SNRS = (-5, 0, 5, 10, 15)
DEFAULT_DATA = "../shared/data"
DEFAULT_CACHE = "/work/ckpt/denoise/cache"


def default_data_dir():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))  # repo root
    return os.path.normpath(os.path.join(root, DEFAULT_DATA))


def read_manifest(data_dir):
    with open(os.path.join(data_dir, "manifest.csv"), newline="") as f:
        return list(csv.DictReader(f))


def _read(path):
    import soundfile as sf   # here, not at the top: a packed corpus needs no soundfile
    x, sr = sf.read(path, dtype="int16", always_2d=True)
    assert sr == SR, (path, sr)
    return x[:, 0] if x.shape[1] == 1 else x.mean(axis=1).astype(np.int16)


def trim_silence(x, margin=0.15, thresh_db=-40.0):
    """Cut leading/trailing silence (20 ms frames below max-40 dB), keep `margin` s."""
    hop = 320
    n = len(x) // hop
    if n < 3:
        return x
    e = (x[: n * hop].astype(np.float32).reshape(n, hop) ** 2).mean(axis=1) + 1e-3
    db = 10 * np.log10(e)
    act = np.nonzero(db > db.max() + thresh_db)[0]
    if len(act) == 0:
        return x
    m = int(margin * SR)
    a = max(0, act[0] * hop - m)
    b = min(len(x), (act[-1] + 1) * hop + m)
    return x[a:b]


def _group_key(row):
    """('speech', speaker) or ('noise', folder) or None."""
    p = row["path"]
    if p.startswith("train/speech/") and row["set"] in SPEECH_SETS:
        return ("speech", row["speaker"])
    if p.startswith("train/noise/"):
        return ("noise", p.split("/")[2])
    return None


PACK_VERSION = 1


class Corpus:
    """All speech and noise of one split, int16, as lists of arrays with labels.
    pack: a file written by pack.py instead of data_dir (training items only)."""

    def __init__(self, data_dir, cache_dir=DEFAULT_CACHE, verbose=True, pack=None):
        self.data_dir = data_dir
        self.items = []  # (kind, group, path, int16 array view)
        if pack is not None:
            t0 = time.time()
            z = np.load(pack, allow_pickle=False)
            if int(z["version"]) != PACK_VERSION:
                raise SystemExit(f"{pack}: pack version {int(z['version'])}, this code reads {PACK_VERSION}")
            offs = z["offsets"]
            audio = trainlib.decode_int16(z["audio_xz"], int(offs[-1]))
            for i, (k, g, p) in enumerate(zip(z["kinds"], z["groups"], z["paths"])):
                self.items.append((str(k), str(g), str(p), audio[offs[i]:offs[i + 1]]))
            if verbose:
                print(f"[data] loaded pack {pack} ({len(self.items)} items, {offs[-1]/SR/60:.1f} min) "
                      f"in {time.time()-t0:.1f}s", flush=True)
            return
        rows = read_manifest(data_dir)
        # the key covers the manifest and which sets are read, so either change rebuilds it
        sig = hashlib.sha1(("\n".join(sorted(r["path"] + r["dur_s"] for r in rows)) + "v3"
                            + ",".join(SPEECH_SETS)).encode()).hexdigest()[:12]
        cache = os.path.join(cache_dir, f"corpus_{sig}.npz")
        if os.path.exists(cache):
            t0 = time.time()
            z = np.load(cache, allow_pickle=False)
            audio, offs = z["audio"], z["offsets"]
            kinds, groups, paths = list(z["kinds"]), list(z["groups"]), list(z["paths"])
            if verbose:
                print(f"[data] loaded cache {cache} in {time.time()-t0:.1f}s", flush=True)
        else:
            t0 = time.time()
            chunks, kinds, groups, paths = [], [], [], []
            for r in rows:
                k = _group_key(r)
                if k is None:
                    continue
                x = _read(os.path.join(data_dir, r["path"]))
                if k[0] == "speech":
                    x = trim_silence(x)
                chunks.append(x)
                kinds.append(k[0]); groups.append(k[1]); paths.append(r["path"])
            offs = np.cumsum([0] + [len(c) for c in chunks]).astype(np.int64)
            audio = np.concatenate(chunks)
            os.makedirs(cache_dir, exist_ok=True)
            tmp = cache + ".tmp.npz"
            np.savez(tmp, audio=audio, offsets=offs, kinds=np.array(kinds), groups=np.array(groups),
                     paths=np.array(paths))
            os.replace(tmp, cache)
            if verbose:
                print(f"[data] decoded {len(paths)} files in {time.time()-t0:.1f}s -> {cache}", flush=True)
        for i in range(len(paths)):
            self.items.append((str(kinds[i]), str(groups[i]), str(paths[i]), audio[offs[i]:offs[i + 1]]))

    def select(self, kind, dev):
        """Items of `kind` in the dev split (dev=True) or the training split."""
        devset = DEV_SPEAKERS if kind == "speech" else DEV_NOISE
        return [it for it in self.items if it[0] == kind and ((it[1] in devset) == dev)]


def to_float(x):
    return x.astype(np.float32) / 32768.0


def rms(x):
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-12))


# mixture RMS range, dBFS. Widened from (-40, -12) on 2026-11-27 (af11b18): real recordings come
# quieter (the vbelz_8k dev pairs are at -42..-46 dBFS) and the model was over-suppressing them.
LEVEL_DB = (-60.0, -10.0)


def _peaking(f0, gain_db, q):
    """RBJ audio-EQ-cookbook peaking biquad as one sos row."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / SR
    al = np.sin(w) / (2 * q)
    b = np.array([1 + al * a, -2 * np.cos(w), 1 - al * a])
    d = np.array([1 + al / a, -2 * np.cos(w), 1 - al / a])
    return np.concatenate([b / d[0], d / d[0]])


def _shelf(f0, gain_db, high):
    """RBJ low or high shelf (slope 1) as one sos row."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / SR
    c, al = np.cos(w), np.sin(w) / np.sqrt(2)
    sa = 2 * np.sqrt(a) * al
    if high:
        b = [a * ((a + 1) + (a - 1) * c + sa), -2 * a * ((a - 1) + (a + 1) * c), a * ((a + 1) + (a - 1) * c - sa)]
        d = [(a + 1) - (a - 1) * c + sa, 2 * ((a - 1) - (a + 1) * c), (a + 1) - (a - 1) * c - sa]
    else:
        b = [a * ((a + 1) - (a - 1) * c + sa), 2 * a * ((a - 1) - (a + 1) * c), a * ((a + 1) - (a - 1) * c - sa)]
        d = [(a + 1) + (a - 1) * c + sa, -2 * ((a - 1) + (a + 1) * c), (a + 1) + (a - 1) * c - sa]
    b, d = np.array(b), np.array(d)
    return np.concatenate([b / d[0], d / d[0]])


class Mixer:
    """On-the-fly training mixtures. All randomness comes from self.rng (numpy Generator),
    whose state is saved in checkpoints so a resumed run continues the same stream."""

    def __init__(self, corpus, seg_s=3.0, seed=0, p_reverb=0.3, p_babble=0.15, p_bandlimit=0.2, p_narrowband=0.1,
                 p_two_noises=0.2, snr_range=(-5.0, 20.0), level_db=LEVEL_DB, p_speed=0.0, p_speech_eq=0.0,
                 p_noise_eq=0.0, p_noise_rumble=0.0, rumble_hz=(100.0, 300.0), p_clean=0.0, p_alias=0.0,
                 alias_steep=0.0, spk_pow=0.0, p_talkers=0.0, tir_range=(0.0, 10.0), p_talker_room=0.5,
                 babble_n=(3, 6)):
        self.seg = int(seg_s * SR)
        self.rng = np.random.default_rng(seed)
        self.p_reverb, self.p_babble, self.p_bandlimit = p_reverb, p_babble, p_bandlimit
        # augmentations against the corpus' small size (26 speakers, 55 min of noise); 0 (off) by
        # default so that runs made before them draw the same stream
        self.p_speed, self.p_speech_eq, self.p_noise_eq = p_speed, p_speech_eq, p_noise_eq
        self.p_noise_rumble = p_noise_rumble
        # share of mixtures with no noise at all: the model must leave clean speech alone
        # (quiet, breathy voices most of all), which mixtures at 20 dB SNR do not teach
        self.p_clean = p_clean
        # the rumble shelf's corner, log-uniform in this range (Hz); one draw whatever the range
        self.rumble_hz = (float(rumble_hz[0]), float(rumble_hz[1]))
        if not 20.0 <= self.rumble_hz[0] <= self.rumble_hz[1] <= 2000.0:
            raise ValueError(f"rumble_hz {rumble_hz}: give [low, high] within 20..2000 Hz")
        self.p_narrowband = p_narrowband
        # 8 kHz origin through a poor resampler (no or a gentle anti-alias filter): the
        # 4-8 kHz band folds below 4 kHz and must be kept as speech, not cut as noise
        self.p_alias = p_alias
        # share of those whose filter is steep but set above 4 kHz (4-5 kHz): only the band
        # between 4 kHz and the corner folds, into a narrow hump under 4 kHz (the skirt of an
        # /s/ piled up at 3.3-3.9 kHz, as in dev pair vbelz_8k/vaccum35)
        self.alias_steep = alias_steep
        self.p_two_noises, self.snr_range, self.level_db = p_two_noises, snr_range, level_db
        # competing talkers: a share of mixtures whose interference is 1-3 other training
        # speakers at tir_range dB (target to interference) below the target, a nearer main
        # talker that the model must keep while it removes the others; each interferer is
        # farther away (through a room) with p_talker_room. Drawn only when p_talkers > 0.
        self.p_talkers, self.p_talker_room = p_talkers, p_talker_room
        self.tir_range = (float(tir_range[0]), float(tir_range[1]))
        # talkers in the babble noise (p_babble), [lo, hi] inclusive
        self.babble_n = (int(babble_n[0]), int(babble_n[1]))
        if not 1 <= self.babble_n[0] <= self.babble_n[1] <= 12:
            raise ValueError(f"babble_n {babble_n}: give [low, high] within 1..12 talkers")
        sp = corpus.select("speech", dev=False)
        self.noise = [it[3] for it in corpus.select("noise", dev=False)]
        self.noise_w = np.array([len(n) for n in self.noise], np.float64)
        self.noise_w /= self.noise_w.sum()
        # per-speaker concatenated streams (crops may cross utterance boundaries)
        by_spk = {}
        for it in sp:
            by_spk.setdefault(it[1], []).append(it[3])
        self.speakers = sorted(by_spk)
        self.streams = [np.concatenate(by_spk[s]) for s in self.speakers]
        # speaker weights: duration ** spk_pow (0: every voice alike, 1: by minute as before
        # 2026-12-07, when 26 speakers had 0.2-20 min each and 208 new ones 8-15 s)
        if not 0.0 <= spk_pow <= 1.0:
            raise ValueError(f"spk_pow {spk_pow}: give 0 (by speaker) .. 1 (by minute)")
        self.spk_w = np.array([len(s) for s in self.streams], np.float64) ** spk_pow
        self.spk_w /= self.spk_w.sum()
        self.sos = {fc: signal.butter(8, fc, btype="low", fs=SR, output="sos") for fc in range(3500, 7501, 500)}
        self.summary = (f"{len(sp)} speech files / {len(self.speakers)} speakers "
                        f"({sum(len(s) for s in self.streams)/SR/60:.1f} min), {len(self.noise)} noise files "
                        f"({sum(len(n) for n in self.noise)/SR/60:.1f} min)")

    def _crop(self, x, n):
        r = self.rng
        if len(x) >= n:
            a = int(r.integers(0, len(x) - n + 1))
            return to_float(x[a:a + n])
        reps = int(np.ceil(n / len(x))) + 1
        t = np.tile(x, reps)
        a = int(r.integers(0, len(x)))
        return to_float(t[a:a + n])

    def _speech(self, n, exclude=None):
        while True:
            k = int(self.rng.choice(len(self.streams), p=self.spk_w))
            if k != exclude:
                return k, self._crop(self.streams[k], n)

    def _others(self, n, k):
        """Crops of k distinct training speakers other than the current target."""
        used, out = {self._cur_spk}, []
        while len(out) < k:
            j = int(self.rng.choice(len(self.streams), p=self.spk_w))
            if j not in used:
                used.add(j)
                out.append(self._crop(self.streams[j], n))
        return out

    def _noise(self, n):
        r = self.rng
        if r.random() < self.p_babble:
            k = int(r.integers(self.babble_n[0], self.babble_n[1] + 1))
            b = np.zeros(n, np.float32)
            for s in self._others(n, k):
                b += s / rms(s)
            return b
        x = self._crop(self.noise[int(r.choice(len(self.noise), p=self.noise_w))], n)
        if r.random() < self.p_two_noises:
            y = self._crop(self.noise[int(r.choice(len(self.noise), p=self.noise_w))], n)
            x = x / rms(x) + y / rms(y) * 10 ** (r.uniform(-10, 5) / 20)
        return x

    def _speech_speed(self, n):
        """A speaker's crop played 0.9-1.1x as fast (pitch and tempo, as Kaldi's speed
        perturbation): new voices and speaking rates from the same recordings."""
        p = int(self.rng.integers(36, 45))  # speed p/40
        k, s = self._speech(int(np.ceil(n * p / 40)) + 8)
        return k, signal.resample_poly(s, 40, p)[:n].astype(np.float32)

    def _eq(self, x):
        """1-3 random peaking filters (RBJ biquads: 100 Hz-7 kHz, +-10 dB, Q 0.5-3) and a
        tilt by a shelf: other microphones, rooms and noise sources."""
        r = self.rng
        sos = []
        for _ in range(int(r.integers(1, 4))):
            f0 = np.exp(r.uniform(np.log(100.0), np.log(7000.0)))
            sos.append(_peaking(f0, r.uniform(-10.0, 10.0), r.uniform(0.5, 3.0)))
        sos.append(_shelf(np.exp(r.uniform(np.log(300.0), np.log(3000.0))), r.uniform(-8.0, 8.0),
                          high=bool(r.random() < 0.5)))
        y = signal.sosfilt(np.array(sos), x).astype(np.float32)
        return y if np.all(np.isfinite(y)) else x

    def _reverb(self, s):
        """Exponentially decaying noise IR; returns (reverberant, early-reverb target)."""
        r = self.rng
        rt60 = r.uniform(0.2, 0.8)
        L = int(min(1.2 * rt60, 1.0) * SR)
        t = np.arange(L) / SR
        h = r.standard_normal(L) * np.exp(-6.908 * t / rt60)
        d0 = int(r.integers(16, 48))  # first reflections 1-3 ms after the direct path
        h[:d0] = 0.0
        drr = r.uniform(0.0, 12.0)  # direct-to-reverberant ratio, dB
        h *= np.sqrt(10 ** (-drr / 10) / (np.sum(h ** 2) + 1e-12))
        h[0] = 1.0
        early = h.copy()
        e = int(0.05 * SR)
        early[e:] = 0.0
        n = len(s)
        wet = signal.fftconvolve(s, h)[:n].astype(np.float32)
        dry = signal.fftconvolve(s, early)[:n].astype(np.float32)
        return wet, dry

    def _talkers(self, n):
        """1-3 interfering talkers (other speakers), each farther away than the target with
        p_talker_room (a room of RT60 0.3-1.0 s heard at a direct-to-reverberant ratio of
        -6..+4 dB) and at a level 0..-6 dB relative to the loudest; their sum."""
        r = self.rng
        k = int(r.integers(1, 4))
        out = np.zeros(n, np.float32)
        for s in self._others(n, k):
            if r.random() < self.p_talker_room:
                s = far_talker(s, r)
            out += s / rms(s) * np.float32(10 ** (-r.uniform(0.0, 6.0) / 20))
        return out

    def _alias_filter(self):
        """The anti-alias filter of one p_alias example, (corner Hz, order): a steep one at
        4-5 kHz (share alias_steep), else none (half the time) or a gentle one at 2.8-4 kHz."""
        r = self.rng
        if self.alias_steep > 0 and r.random() < self.alias_steep:
            return r.uniform(4000.0, 5000.0), 8
        return (0.0 if r.random() < 0.5 else r.uniform(2800.0, 4000.0)), 2

    def sample(self):
        """One training pair (noisy, target), float32, length seg."""
        r, n = self.rng, self.seg
        if self.p_speed > 0 and r.random() < self.p_speed:
            self._cur_spk, s = self._speech_speed(n)
        else:
            self._cur_spk, s = self._speech(n)
        if self.p_speech_eq > 0 and r.random() < self.p_speech_eq:
            s = self._eq(s)
        if r.random() < self.p_reverb:
            s_in, target = self._reverb(s)
        else:
            s_in, target = s, s.copy()
        talk = self._talkers(n) if self.p_talkers > 0 and r.random() < self.p_talkers else None
        noise = self._noise(n)
        if self.p_noise_eq > 0 and r.random() < self.p_noise_eq:
            noise = self._eq(noise)
        if self.p_noise_rumble > 0 and r.random() < self.p_noise_rumble:
            # low-frequency rumble (engines, ventilation, handling): the noise's band under
            # rumble_hz (default 100-300 Hz) raised by 10-25 dB (a low shelf)
            lo, hi = self.rumble_hz
            sos = _shelf(np.exp(r.uniform(np.log(lo), np.log(hi))), r.uniform(10.0, 25.0), high=False)
            noise = signal.sosfilt(sos[None], noise).astype(np.float32)
        snr = r.uniform(*self.snr_range)
        gn = rms(s_in) / rms(noise) * 10 ** (-snr / 20)
        if self.p_clean > 0 and r.random() < self.p_clean:
            gn = 0.0
        if talk is not None:
            # the talkers are the interference; the noise stays 10 dB further down, and
            # half of these mixtures have none
            tir = r.uniform(*self.tir_range)
            gn = gn * 10 ** (-10.0 / 20) if r.random() < 0.5 else 0.0
            mix = s_in + gn * noise + rms(s_in) / rms(talk) * 10 ** (-tir / 20) * talk
        else:
            mix = s_in + gn * noise
        u = r.random()
        if u < self.p_bandlimit:
            fc = int(r.choice(list(self.sos)))
            mix = signal.sosfilt(self.sos[fc], mix).astype(np.float32)
            target = signal.sosfilt(self.sos[fc], target).astype(np.float32)
        elif u < self.p_bandlimit + self.p_narrowband:
            # 8 kHz origin (telephone, VoIP, old recordings): through 8 kHz and back, a
            # steep anti-alias filter at 4 kHz as resamplers make, not a gentle low-pass
            mix = signal.resample_poly(signal.resample_poly(mix, 1, 2), 2, 1)[:n].astype(np.float32)
            target = signal.resample_poly(signal.resample_poly(target, 1, 2), 2, 1)[:n].astype(np.float32)
        elif u < self.p_bandlimit + self.p_narrowband + self.p_alias:
            fc, order = self._alias_filter()  # the target goes through the same link
            mix, target = alias8k(mix, fc, order), alias8k(target, fc, order)
        g = 10 ** (r.uniform(*self.level_db) / 20) / rms(mix)
        peak = max(np.abs(mix).max(), np.abs(target).max()) * g
        if peak > 0.99:
            g *= 0.99 / peak
        return (mix * g).astype(np.float32), (target * g).astype(np.float32)

    def batch(self, b):
        xs, ys = zip(*[self.sample() for _ in range(b)])
        return np.stack(xs), np.stack(ys)


def room_ir(rng, rt60, drr_db, n_max=SR):
    """Exponentially decaying Gaussian noise after a unit direct path (first reflections
    1-3 ms later), scaled to the direct-to-reverberant ratio drr_db."""
    L = int(min(1.2 * rt60, n_max / SR) * SR)
    t = np.arange(L) / SR
    h = rng.standard_normal(L) * np.exp(-6.908 * t / rt60)
    h[:int(rng.integers(16, 48))] = 0.0
    h *= np.sqrt(10 ** (-drr_db / 10) / (np.sum(h ** 2) + 1e-12))
    h[0] = 1.0
    return h


def far_talker(s, rng):
    """A talker farther from the microphone than the target: RT60 0.3-1.0 s, direct to
    reverberant -6..+4 dB (a close talker's is about 10 dB and more)."""
    h = room_ir(rng, rng.uniform(0.3, 1.0), rng.uniform(-6.0, 4.0))
    return signal.fftconvolve(s, h)[:len(s)].astype(np.float32)


def alias8k(x, fc=0.0, order=2):
    """x through a poor 8 kHz link: a Butterworth low-pass at fc Hz (none when 0), every
    other sample kept (what is left of 4-8 kHz folds below 4 kHz), back to 16 kHz by a
    proper resampler."""
    if fc > 0:
        x = signal.sosfilt(signal.butter(order, fc, fs=SR, output="sos"), x)
    return signal.resample_poly(x[::2], 2, 1)[:len(x)].astype(np.float32)


def dev_mixtures(corpus, per_snr=24, seed=1234):
    """Deterministic dev mixtures: list of (name, snr, noisy, clean) float32."""
    rng = np.random.default_rng(seed)
    speech = sorted(corpus.select("speech", dev=True), key=lambda it: it[2])
    noise = sorted(corpus.select("noise", dev=True), key=lambda it: it[2])
    by_spk = {}
    for it in speech:
        by_spk.setdefault(it[1], []).append(it)
    spks = sorted(by_spk)
    out = []
    for snr in DEV_SNRS:
        for k in range(per_snr):
            spk = spks[k % len(spks)]
            it = by_spk[spk][int(rng.integers(len(by_spk[spk])))]
            s = to_float(it[3])
            nz = noise[int(rng.integers(len(noise)))]
            nx = nz[3]
            if len(nx) < len(s):
                nx = np.tile(nx, int(np.ceil(len(s) / len(nx))))
            a = int(rng.integers(0, len(nx) - len(s) + 1))
            nv = to_float(nx[a:a + len(s)])
            gn = rms(s) / rms(nv) * 10 ** (-snr / 20)
            mix = s + gn * nv
            g = 10 ** (rng.uniform(-35, -20) / 20) / rms(mix)
            pk = np.abs(mix).max() * g
            if pk > 0.99:
                g *= 0.99 / pk
            name = f"{os.path.basename(it[2])[:-5]}+{nz[1]}/{os.path.basename(nz[2])[:-5]}@{snr}dB"
            out.append((name, snr, (mix * g).astype(np.float32), (s * g).astype(np.float32)))
    return out


def dev_babble(corpus, per_snr=24, seed=2468, far=False):
    """Deterministic competing-talker mixtures of the dev speakers alone (no training
    speaker, no noise): list of (name, snr, noisy, clean) float32. For each input SNR
    (DEV_SNRS: the target against the sum of the interferers), per_snr targets cycle
    through the dev speakers; the k-th has 1 + k % 3 interferers, other dev speakers
    drawn without repeats, each a crop of that speaker's utterances one after another,
    at equal power. far: each interferer through its own room (far_talker: RT60 0.3-1.0
    s, direct-to-reverberant -6..+4 dB), the target dry, as when the main talker is
    nearest the microphone. Levels -35..-20 dBFS as the dev mixtures."""
    rng = np.random.default_rng(seed)
    by_spk = {}
    for it in sorted(corpus.select("speech", dev=True), key=lambda it: it[2]):
        by_spk.setdefault(it[1], []).append(it)
    spks = sorted(by_spk)
    streams = {k: np.concatenate([it[3] for it in v]) for k, v in by_spk.items()}
    out = []
    for snr in DEV_SNRS:
        for k in range(per_snr):
            spk = spks[k % len(spks)]
            it = by_spk[spk][int(rng.integers(len(by_spk[spk])))]
            s = to_float(it[3])
            n = len(s)
            others = [spks[j] for j in rng.choice(len(spks), len(spks), replace=False) if spks[j] != spk]
            others = others[:1 + k % 3]
            interf = np.zeros(n, np.float64)
            for o in others:
                x = streams[o]
                if len(x) < n:
                    x = np.tile(x, int(np.ceil(n / len(x))) + 1)
                a = int(rng.integers(0, len(x) - n + 1))
                c = to_float(x[a:a + n])
                if far:
                    c = far_talker(c, rng)
                interf += c / rms(c)
            gi = rms(s) / rms(interf) * 10 ** (-snr / 20)
            mix = s + gi * interf.astype(np.float32)
            g = 10 ** (rng.uniform(-35, -20) / 20) / rms(mix)
            pk = np.abs(mix).max() * g
            if pk > 0.99:
                g *= 0.99 / pk
            name = f"{os.path.basename(it[2])[:-5]}+{'+'.join(others)}@{snr}dB"
            out.append((name, snr, (mix * g).astype(np.float32), (s * g).astype(np.float32)))
    return out


def dev_pairs(data_dir):
    """Real pairs: list of (name, noisy, clean) float32."""
    out = []
    root = os.path.join(data_dir, "dev", "pairs")
    for sub in sorted(os.listdir(root)):
        nd = os.path.join(root, sub, "noisy")
        for fn in sorted(os.listdir(nd)):
            c = os.path.join(root, sub, "clean", fn)
            if not os.path.exists(c):
                continue
            x, y = to_float(_read(os.path.join(nd, fn))), to_float(_read(c))
            n = min(len(x), len(y))
            out.append((f"{sub}/{fn[:-5]}", x[:n], y[:n]))
    return out


def level_change_db(x, y):
    """Output y's level against the input x's, dB (energy over the common length)."""
    n = min(len(x), len(y))
    return float(10 * np.log10((np.sum(np.asarray(y[:n], np.float64) ** 2) + 1e-20)
                               / (np.sum(np.asarray(x[:n], np.float64) ** 2) + 1e-20)))


def dev_clean(corpus, per_speaker=0, seed=4321):
    """Dev speakers' utterances, no noise, scaled to -35..-20 dBFS RMS (the dev mixtures'
    range), deterministic. per_speaker 0: all of them."""
    rng = np.random.default_rng(seed)
    by_spk = {}
    for it in sorted(corpus.select("speech", dev=True), key=lambda it: it[2]):
        by_spk.setdefault(it[1], []).append(it)
    out = []
    for spk in sorted(by_spk):
        its = by_spk[spk]
        if per_speaker and per_speaker < len(its):
            pick = sorted(rng.choice(len(its), per_speaker, replace=False))
            its = [its[i] for i in pick]
        for it in its:
            s = to_float(it[3])
            g = 10 ** (rng.uniform(-35, -20) / 20) / rms(s)
            g = min(g, 0.99 / (np.abs(s).max() + 1e-9))
            out.append((os.path.basename(it[2])[:-5], (s * g).astype(np.float32)))
    return out


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=default_data_dir())
    ap.add_argument("--cache", default=DEFAULT_CACHE)
    a = ap.parse_args()
    c = Corpus(a.data, a.cache)
    m = Mixer(c)
    print("[data] train:", m.summary)
    print("[data] train speakers:", " ".join(m.speakers))
    dm = dev_mixtures(c)
    print("[data] dev speech speakers:", sorted({it[1] for it in c.select('speech', True)}),
          "dev noise:", sorted({it[1] for it in c.select('noise', True)}))
    db = dev_babble(c)
    print(f"[data] dev mixtures {len(dm)} ({sum(len(d[2]) for d in dm)/SR:.0f} s), babble {len(db)} "
          f"({sum(len(d[2]) for d in db)/SR:.0f} s), pairs {len(dev_pairs(a.data))}")
    t0 = time.time()
    x, y = m.batch(16)
    print(f"[data] batch of 16 x {m.seg/SR:.1f} s in {time.time()-t0:.2f}s; rms {np.sqrt((x**2).mean()):.4f}")
