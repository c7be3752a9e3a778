#!/usr/bin/python3
"""Pack a subset of the denoiser's training data into one file for a machine without
../shared (a lent GPU machine carries at most 64 MiB of the work tree).

    /usr/bin/python3 tools/denoise/pack.py --out .gpu/denoise-train.npz \
        [--speech-min 23] [--noise-min 8] [--max-mib 38] [--seed 0]

Only the training split goes in (the dev speakers and dev noise folders stay out, as in
training here). Every training speaker and every noise file is kept:
- speech: each speaker's utterances (silence trimmed, as the cache holds them) in a
  seeded random order, until the speaker has given its share, speech-min / the
  training speech's total, of its own duration;
- noise: from each file one seeded random stretch of the same share of its length
  (at least 3 s, or the whole file when shorter).
Lossless (trainlib.encode_int16). train.py --pack FILE trains from it.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import trainlib  # noqa: E402  (data.py put tools/ on the path)


def subset(corpus, speech_min, noise_min, seed):
    """[(kind, group, path, int16)] of the training split, about the minutes asked."""
    rng = np.random.default_rng(seed)
    speech = corpus.select("speech", dev=False)
    noise = corpus.select("noise", dev=False)
    tot_s = sum(len(it[3]) for it in speech) / D.SR / 60
    tot_n = sum(len(it[3]) for it in noise) / D.SR / 60
    fs, fn = min(1.0, speech_min / tot_s), min(1.0, noise_min / tot_n)
    out = []
    by_spk = {}
    for it in speech:
        by_spk.setdefault(it[1], []).append(it)
    for spk in sorted(by_spk):
        its = by_spk[spk]
        want = fs * sum(len(it[3]) for it in its)
        got = 0
        for k in rng.permutation(len(its)):
            if got >= want:
                break
            out.append(its[k])
            got += len(its[k][3])
    for it in noise:
        x = it[3]
        n = min(len(x), max(int(fn * len(x)), 3 * D.SR))
        a = int(rng.integers(0, len(x) - n + 1))
        out.append((it[0], it[1], it[2], x[a:a + n]))
    return out, tot_s, tot_n


def write_pack(items, path, note):
    offs = np.cumsum([0] + [len(it[3]) for it in items]).astype(np.int64)
    audio = np.concatenate([it[3] for it in items]).astype(np.int16)
    tmp = path + ".tmp.npz"
    np.savez(tmp, version=np.int64(D.PACK_VERSION), audio_xz=trainlib.encode_int16(audio), offsets=offs,
             kinds=np.array([it[0] for it in items]), groups=np.array([it[1] for it in items]),
             paths=np.array([it[2] for it in items]), note=np.array(note))
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=D.default_data_dir())
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--out", required=True)
    ap.add_argument("--speech-min", type=float, default=23.0)
    ap.add_argument("--noise-min", type=float, default=8.0)
    ap.add_argument("--max-mib", type=float, default=38.0, help="fail (writing nothing) above this size")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.speech_min <= 0 or a.noise_min <= 0:
        ap.error("--speech-min and --noise-min must be positive")
    corpus = D.Corpus(a.data, a.cache)
    items, tot_s, tot_n = subset(corpus, a.speech_min, a.noise_min, a.seed)
    sp = sum(len(it[3]) for it in items if it[0] == "speech") / D.SR / 60
    nz = sum(len(it[3]) for it in items if it[0] == "noise") / D.SR / 60
    note = (f"speech {sp:.1f} of {tot_s:.1f} min, noise {nz:.1f} of {tot_n:.1f} min, seed {a.seed}, "
            f"speakers {len({it[1] for it in items if it[0] == 'speech'})}, "
            f"noise files {sum(it[0] == 'noise' for it in items)}")
    out = os.path.abspath(a.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    write_pack(items, out, note)
    mib = os.path.getsize(out) / 2 ** 20
    if mib > a.max_mib:
        os.remove(out)
        raise SystemExit(f"pack: {mib:.1f} MiB is over --max-mib {a.max_mib:g}; ask for fewer minutes")
    back = D.Corpus(None, pack=out, verbose=False)
    assert len(back.items) == len(items) and all(
        np.array_equal(b[3], it[3]) for b, it in zip(back.items, items)), "pack does not read back"
    print(f"wrote {a.out}: {mib:.1f} MiB; {note}")


if __name__ == "__main__":
    main()
