#!/usr/bin/python3
"""Pack a subset of the vocoder's training speech into one file for a machine without
../shared (a lent GPU machine carries at most 64 MiB of the work tree).

    /usr/bin/python3 tools/vocoder/pack.py --out .gpu/vocoder-train.npz \
        [--minutes 40] [--max-mib 40] [--seed 0]

Training speakers only (the dev speakers stay out, as in training here), every one of
them: each speaker's utterances in a seeded random order until it has given its share,
--minutes / the training speech's total, of its own duration. The utterances go in as
the cache holds them (silence trimmed, padded on the frame grid), losslessly
(trainlib.encode_int16); data.Corpus(pack=...) computes their mels again and
train.py --pack trains from it.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import trainlib  # noqa: E402  (data.py put tools/ on the path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=D.default_data_dir())
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=40.0)
    ap.add_argument("--max-mib", type=float, default=40.0, help="fail (writing nothing) above this size")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.minutes <= 0:
        ap.error("--minutes must be positive")
    c = D.Corpus(a.data, a.cache)
    rng = np.random.default_rng(a.seed)
    train = c.split(dev=False)
    length = {i: int(c.aoff[i + 1] - c.aoff[i]) for i in train}
    total = sum(length.values()) / D.A.SR / 60
    frac = min(1.0, a.minutes / total)
    by_spk = {}
    for i in train:
        by_spk.setdefault(c.speakers[i], []).append(i)
    keep = []
    for spk in sorted(by_spk):
        ids = by_spk[spk]
        want, got = frac * sum(length[i] for i in ids), 0
        for k in rng.permutation(len(ids)):
            if got >= want:
                break
            keep.append(ids[k])
            got += length[ids[k]]
    keep.sort()
    auds = [c.audio[c.aoff[i]:c.aoff[i + 1]] for i in keep]
    aoff = np.cumsum([0] + [len(x) for x in auds]).astype(np.int64)
    mins = aoff[-1] / D.A.SR / 60
    note = f"{len(keep)} utterances, {len(by_spk)} speakers, {mins:.1f} of {total:.1f} min, seed {a.seed}"
    out = os.path.abspath(a.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    tmp = out + ".tmp.npz"
    np.savez(tmp, version=np.int64(D.PACK_VERSION), audio_xz=trainlib.encode_int16(np.concatenate(auds)),
             aoff=aoff, speakers=np.array([c.speakers[i] for i in keep]),
             paths=np.array([c.paths[i] for i in keep]), note=np.array(note))
    mib = os.path.getsize(tmp) / 2 ** 20
    if mib > a.max_mib:
        os.remove(tmp)
        raise SystemExit(f"pack: {mib:.1f} MiB is over --max-mib {a.max_mib:g}; ask for fewer minutes")
    back = D.Corpus(None, pack=tmp, verbose=False)
    for n, i in enumerate(keep):
        if not (np.array_equal(back.audio[back.aoff[n]:back.aoff[n + 1]], auds[n]) and
                np.array_equal(back.mel[back.moff[n]:back.moff[n + 1]], c.mel[c.moff[i]:c.moff[i + 1]])):
            os.remove(tmp)
            raise SystemExit(f"pack: {c.paths[i]} does not read back as the cache holds it")
    os.replace(tmp, out)
    print(f"wrote {a.out}: {mib:.1f} MiB; {note}")


if __name__ == "__main__":
    main()
