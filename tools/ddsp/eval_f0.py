#!/usr/bin/python3
"""eval_f0.py - accuracy of the f0 feature (`oscine features`) on rendered
melodies with known notes.

    /usr/bin/python3 tools/ddsp/eval_f0.py [--seconds 120] [--hop-ms 10]
        [--threshold 0.5] [--soundfont PATH] [--keep DIR]

For each instrument it writes a random monophonic melody as a standard MIDI
file (notes of 0.15-1.2 s in the instrument's range, legato steps, short
gaps and longer rests), renders it with fluidsynth (Debian: fluidsynth,
fluid-soundfont-gm; reverb and chorus off) at 16 kHz, runs
`oscine features` on it and scores every frame.

Two references. MIDI: a frame is voiced with the note that the MIDI
note-on/off times say is playing (shifted by fluidsynth's measured output
delay). But a note keeps sounding after its note-off (the sound font's
release, up to ~1 s for strings) and a bowed note takes ~100 ms to speak,
so around each transition the MIDI labels name a note that is not (yet, or
any more) the loudest. Sounding: the odd and even notes are also rendered
into two separate files (consecutive notes never share one) and a frame is
labelled with the latest note of the louder file (RMS over the 64 ms
analysis window): voiced when that level is within 40 dB of the melody's
median note level, unvoiced when both are more than 60 dB below it (in
between: left out of the voicing scores).

  RPA           ref-voiced frames whose f0 is within 50 cents of the reference
                (raw pitch accuracy: the estimate's voicing ignored)
  body          RPA without the 40 ms after each note-on and before each note-off
  octave        ref-voiced frames off by 1200 +- 50 cents
  |cents|       median error of the frames within 50 cents
  recall        ref-voiced frames called voiced (confidence >= --threshold)
  FA            ref-unvoiced frames called voiced (false alarms)
  gated         the same with voiced = confidence >= threshold and
                loudness >= --gate-db (release tails far below the notes stay
                periodic, so confidence alone calls them voiced)

Nothing here runs in `make test` (it needs the 140 MB sound font). Seeds
are fixed, so the numbers in docs/ddsp.md are reproducible.
"""

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np
import soundfile as sf

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dsp  # noqa: E402

SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# name, General MIDI program (0-based), lowest and highest MIDI note
INSTRUMENTS = [
    ("violin", 40, 55, 88),
    ("flute", 73, 60, 93),
    ("trumpet", 56, 55, 82),
    ("clarinet", 71, 50, 84),
    ("cello", 42, 36, 72),
    ("alto sax", 65, 49, 80),
]
TICKS = 960          # per quarter note; tempo 1 s per quarter: 1 tick = 1/960 s


def melody(rng, lo, hi, seconds):
    """[(on_s, off_s, note)] monophonic, non-overlapping."""
    notes, t, cur = [], 0.3, rng.integers(lo, hi + 1)
    while True:
        dur = float(rng.uniform(0.15, 1.2))
        if t + dur > seconds - 0.5:
            break
        step = int(rng.choice([-7, -5, -4, -3, -2, -1, 1, 2, 3, 4, 5, 7, 12, -12]))
        cur = int(np.clip(cur + step, lo, hi))
        notes.append((t, t + dur, cur))
        r = rng.random()
        gap = 0.0 if r < 0.4 else rng.uniform(0.03, 0.25) if r < 0.85 else rng.uniform(0.6, 1.5)
        t += dur + gap
    return notes


def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path, notes, program, velocity=96):
    """Type 0 standard MIDI file, channel 0, 1 s per quarter note."""
    ev = [(0, bytes([0xFF, 0x51, 0x03]) + (1000000).to_bytes(3, "big")),
          (0, bytes([0xC0, program]))]
    for on, off, n in notes:
        ev.append((round(on * TICKS), bytes([0x90, n, velocity])))
        ev.append((round(off * TICKS), bytes([0x80, n, 0])))
    ev.sort(key=lambda e: (e[0], e[1][0] != 0x80))  # note-off before note-on at one time
    track, last = b"", 0
    for tick, data in ev:
        track += vlq(tick - last) + data
        last = tick
    track += vlq(TICKS) + bytes([0xFF, 0x2F, 0x00])
    with open(path, "wb") as f:
        f.write(b"MThd" + struct.pack(">IHHH", 6, 0, 1, TICKS))
        f.write(b"MTrk" + struct.pack(">I", len(track)) + track)


def render(mid, wav, soundfont):
    """fluidsynth at 16 kHz, reverb and chorus off; returns the mono signal."""
    subprocess.run(["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5",
                    "-r", "16000", "-T", "wav", "-F", wav, soundfont, mid],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    x, sr = sf.read(wav, dtype="float64")
    if sr != 16000:
        sys.exit(f"eval_f0: fluidsynth wrote {sr} Hz, not 16000")
    return x.mean(axis=1) if x.ndim > 1 else x


def frame_rms(x, n_frames, hop, win=1024):
    """RMS of the win samples centred on each frame (zero outside x)."""
    xp = np.concatenate([np.zeros(win // 2), x, np.zeros(win // 2 + n_frames * hop)])
    c = np.concatenate([[0.0], np.cumsum(xp * xp)])
    i = np.arange(n_frames) * hop
    return np.sqrt(np.maximum(c[i + win] - c[i], 0) / win)


def hz(note):
    return 440.0 * 2 ** ((note - 69) / 12)


def cents(f0, ref):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((f0 > 0) & (ref > 0), 1200 * np.log2(f0 / np.where(ref > 0, ref, 1)),
                        np.inf)


def midi_reference(notes, n, hop_s, delay_s):
    """Reference f0 per frame (0: no note) and the note-body mask."""
    t = np.arange(n) * hop_s
    ref = np.zeros(n)
    body = np.zeros(n, bool)
    for on, off, note in notes:
        on, off = on + delay_s, off + delay_s
        ref[(t >= on) & (t < off)] = hz(note)
        body |= (t >= on + 0.04) & (t < off - 0.04)
    return ref, body


def sounding_reference(notes, even, odd, n, hop_s):
    """(reference f0, voiced mask, unvoiced mask) from the two stems."""
    hop = int(round(hop_s * 16000))
    t = np.arange(n) * hop_s
    lv = [frame_rms(even, n, hop), frame_rms(odd, n, hop)]
    cur = [np.zeros(n), np.zeros(n)]  # the note each stem started last
    for i, (on, _, note) in enumerate(notes):
        cur[i % 2][t >= on] = hz(note)
    level = np.maximum(lv[0], lv[1])
    ref = np.where(lv[0] >= lv[1], cur[0], cur[1])
    in_note = np.zeros(n, bool)
    for on, off, _ in notes:
        in_note |= (t >= on) & (t < off)
    median = np.median(level[in_note])
    voiced = (level >= median * 10 ** (-40 / 20)) & (ref > 0)
    unvoiced = level < median * 10 ** (-60 / 20)
    return np.where(voiced, ref, 0.0), voiced, unvoiced


def score(f0, conf, loud, ref, voiced, unvoiced, threshold, gate_db, body=None):
    c = cents(f0, ref)
    ok = voiced & (np.abs(c) <= 50)
    est = conf >= threshold
    gated = est & (loud >= gate_db)
    r = {
        "rpa": ok.sum() / voiced.sum(),
        "octave": (voiced & (np.abs(np.abs(c) - 1200) <= 50)).sum() / voiced.sum(),
        "cents": float(np.median(np.abs(c[ok]))),
        "recall": (est & voiced).sum() / voiced.sum(),
        "fa": (est & unvoiced).sum() / max(1, unvoiced.sum()),
        "recall_gated": (gated & voiced).sum() / voiced.sum(),
        "fa_gated": (gated & unvoiced).sum() / max(1, unvoiced.sum()),
    }
    if body is not None:
        r["body"] = (ok & body).sum() / (voiced & body).sum()
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--hop-ms", type=float, default=10)
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--gate-db", type=float, default=-60.0)
    ap.add_argument("--soundfont", default=SOUNDFONT)
    ap.add_argument("--keep", help="keep the MIDI, WAV and CSV files in this folder")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    if not shutil.which("fluidsynth") or not os.path.exists(a.soundfont):
        sys.exit("eval_f0: needs fluidsynth and a GM sound font "
                 "(apt-get install fluidsynth fluid-soundfont-gm)")
    work = a.keep or tempfile.mkdtemp(prefix="oscine-f0-")
    os.makedirs(work, exist_ok=True)
    hop_s = a.hop_ms / 1000
    print(f"{a.seconds:.0f} s per instrument at 16 kHz, hop {a.hop_ms:g} ms; voiced: "
          f"confidence >= {a.threshold:g} (gated: and loudness >= {a.gate_db:g} dB)")
    print(f"{'':<10} | {'MIDI ref.':^13} | {'sounding reference':^48}")
    print(f"{'':<10} | {'':13} | {'':27} | {'gated':^13} |")
    print(f"{'instrument':<10} | {'RPA':>6} {'body':>6} | {'RPA':>6} {'octave':>6} "
          f"{'|cents|':>7} {'recall':>6} {'FA':>6} {'recall':>6} {'FA':>6}")
    rows = []
    delays = []
    for i, (name, prog, lo, hi) in enumerate(INSTRUMENTS):
        rng = np.random.default_rng(a.seed * 100 + i)
        notes = melody(rng, lo, hi, a.seconds)
        stem = os.path.join(work, name.replace(" ", "_"))
        write_midi(stem + ".mid", notes, prog)
        write_midi(stem + "-even.mid", notes[0::2], prog)
        write_midi(stem + "-odd.mid", notes[1::2], prog)
        x = render(stem + ".mid", stem + ".wav", a.soundfont)
        even = render(stem + "-even.mid", stem + "-even.wav", a.soundfont)
        odd = render(stem + "-odd.mid", stem + "-odd.wav", a.soundfont)
        delay = np.argmax(np.abs(x) > 1e-4) / 16000 - notes[0][0]
        delays.append(delay)
        f0, conf, loud = dsp.features(stem + ".wav", hop_ms=a.hop_ms)
        n = len(f0)
        mref, body = midi_reference(notes, n, hop_s, delay)
        m = score(f0, conf, loud, mref, mref > 0, mref == 0, a.threshold, a.gate_db, body)
        sref, sv, su = sounding_reference(notes, even, odd, n, hop_s)
        s = score(f0, conf, loud, sref, sv, su, a.threshold, a.gate_db)
        s["midi"], s["body"] = m["rpa"], m["body"]
        rows.append(s)
        print(f"{name:<10} | {100 * m['rpa']:6.2f} {100 * m['body']:6.2f} | "
              f"{100 * s['rpa']:6.2f} {100 * s['octave']:6.2f} {s['cents']:7.2f} "
              f"{100 * s['recall']:6.2f} {100 * s['fa']:6.2f} "
              f"{100 * s['recall_gated']:6.2f} {100 * s['fa_gated']:6.2f}")
    mean = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
    print(f"{'mean':<10} | {100 * mean['midi']:6.2f} {100 * mean['body']:6.2f} | "
          f"{100 * mean['rpa']:6.2f} {100 * mean['octave']:6.2f} {mean['cents']:7.2f} "
          f"{100 * mean['recall']:6.2f} {100 * mean['fa']:6.2f} "
          f"{100 * mean['recall_gated']:6.2f} {100 * mean['fa_gated']:6.2f}")
    print(f"(all numbers in %; fluidsynth output delay {1000 * np.mean(delays):.1f} ms, "
          "compensated in the MIDI reference)")
    if not a.keep:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
