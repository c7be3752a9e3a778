"""Evaluate a denoiser checkpoint: SI-SDR on the dev mixtures (per input SNR) and on the
real dev pairs, for the noisy input and for the enhanced output (both against clean),
on the dev babble set (data.dev_babble: dev speakers against 1-3 other dev speakers),
and with --sets clean, on the dev speakers' clean utterances (no noise: output against
input, as tools/eval_denoise's clean set, to see what a checkpoint does to clean speech);
--sets alias8k: the same utterances through a poor 8 kHz link (data.alias8k: no
anti-alias filter), output against that input.

    /usr/bin/python3 tools/denoise/evaluate.py --ckpt /work/ckpt/denoise/best.pt [--out DIR]
    /usr/bin/python3 tools/denoise/evaluate.py --sets clean --ckpt /work/ckpt/r5a/eval-*.pt

PESQ / STOI are not computed (not packaged in Debian); SI-SDR only.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/
import data as D  # noqa: E402
import model as M  # noqa: E402
import runinfo  # noqa: E402
import trainlib  # noqa: E402


def si_sdr(est, ref, eps=1e-9):
    est = est.astype(np.float64) - est.mean()
    ref = ref.astype(np.float64) - ref.mean()
    a = np.dot(est, ref) / (np.dot(ref, ref) + eps)
    t = a * ref
    return 10 * np.log10((np.sum(t ** 2) + eps) / (np.sum((est - t) ** 2) + eps))


@torch.no_grad()
def enhance_np(model, x, device="cpu"):
    was = model.training
    model.eval()
    y = model.enhance(torch.from_numpy(x)[None].to(device))[0].cpu().numpy()
    model.train(was)
    return y


def _by_snr(model, mixtures, device, key, res):
    """Mean SI-SDR of noisy and enhanced over (name, snr, noisy, clean) mixtures, all and
    per input SNR, into res[key_noisy], res[key_enh], res[key_{snr}_noisy/enh]."""
    per_snr = {}
    for name, snr, x, s in mixtures:
        y = enhance_np(model, x, device)
        per_snr.setdefault(snr, []).append((si_sdr(x, s), si_sdr(y, s)))
    allv = [v for vs in per_snr.values() for v in vs]
    res[f"{key}_noisy"] = float(np.mean([v[0] for v in allv]))
    res[f"{key}_enh"] = float(np.mean([v[1] for v in allv]))
    for snr in sorted(per_snr):
        res[f"{key}_{snr}_noisy"] = float(np.mean([v[0] for v in per_snr[snr]]))
        res[f"{key}_{snr}_enh"] = float(np.mean([v[1] for v in per_snr[snr]]))


def evaluate(model, mixtures, pairs, device="cpu", out_dir=None, babble=None):
    """Returns a dict of mean SI-SDRs: mix_noisy, mix_enh, mix_{snr}_noisy/enh,
    pairs_noisy, pairs_enh, per-pair rows in 'pair_rows', and with babble (data.dev_babble)
    babble_noisy, babble_enh, babble_{snr}_noisy/enh."""
    res = {}
    _by_snr(model, mixtures, device, "mix", res)
    if babble:
        _by_snr(model, babble, device, "babble", res)
    rows = []
    for name, x, s in pairs:
        y = enhance_np(model, x, device)
        rows.append((name, si_sdr(x, s), si_sdr(y, s)))
        if out_dir:
            import soundfile as sf
            p = os.path.join(out_dir, name.replace("/", "__") + ".wav")
            sf.write(p, np.clip(y, -1, 1), D.SR, subtype="PCM_16")
    res["pairs_noisy"] = float(np.mean([r[1] for r in rows])) if rows else float("nan")
    res["pairs_enh"] = float(np.mean([r[2] for r in rows])) if rows else float("nan")
    res["pair_rows"] = rows
    # model-selection score: SI-SDR improvement, dev mixtures 70 %, real pairs 30 %; with
    # the babble set (since 2026-12-07) mixtures 50 %, pairs 25 %, babble 25 %
    mi, pi = res["mix_enh"] - res["mix_noisy"], res["pairs_enh"] - res["pairs_noisy"]
    if babble:
        res["score"] = 0.5 * mi + 0.25 * pi + 0.25 * (res["babble_enh"] - res["babble_noisy"])
    else:
        res["score"] = 0.7 * mi + 0.3 * pi
    return res


def evaluate_clean(model, clean, device="cpu"):
    """Clean speech in, no noise: SI-SDR of the output against the input (mean, min,
    the worst utterance) and the mean level change, dB."""
    rows = []
    for name, x in clean:
        y = enhance_np(model, x, device)
        n = min(len(x), len(y))
        rows.append((name, si_sdr(y[:n], x[:n]), D.level_change_db(x, y)))
    k = int(np.argmin([r[1] for r in rows]))
    return {"clean_si_sdr": float(np.mean([r[1] for r in rows])), "clean_min": rows[k][1],
            "clean_worst": rows[k][0], "clean_level_db": float(np.mean([r[2] for r in rows])),
            "clean_rows": rows}


def format_result(res):
    lines = []
    for key, label in (("mix", "dev mixtures"), ("babble", "dev babble")):
        if f"{key}_noisy" not in res:
            continue
        lines.append(f"{label:13s} noisy {res[f'{key}_noisy']:6.2f} dB  enhanced {res[f'{key}_enh']:6.2f} dB  "
                     f"(improvement {res[f'{key}_enh']-res[f'{key}_noisy']:+.2f})")
        for k in sorted((k for k in res if k.startswith(key + "_") and k.endswith("_noisy")
                         and k != f"{key}_noisy"), key=lambda k: int(k.split("_")[1])):
            snr = k.split("_")[1]
            lines.append(f"  input SNR {snr:>3s} dB: noisy {res[k]:6.2f}  enhanced {res[f'{key}_{snr}_enh']:6.2f}")
    lines.append(f"dev pairs     noisy {res['pairs_noisy']:6.2f} dB  enhanced {res['pairs_enh']:6.2f} dB  "
                 f"(improvement {res['pairs_enh']-res['pairs_noisy']:+.2f})")
    for name, a, b in res["pair_rows"]:
        lines.append(f"  {name:45s} noisy {a:6.2f}  enhanced {b:6.2f}")
    w = "0.5 mix + 0.25 pairs + 0.25 babble" if "babble_noisy" in res else "0.7 mix + 0.3 pairs"
    lines.append(f"score ({w}, SI-SDRi) {res['score']:.3f}")
    return "\n".join(lines)


def load_model(path, device="cpu"):
    ck = runinfo.load(path, device)
    m = M.build(ck["model_cfg"]).to(device)
    m.load_state_dict(ck["model"])
    m.eval()
    return m, ck


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", nargs="+", default=["/work/ckpt/denoise/best.pt"],
                    help="one or more checkpoints, each scored in turn")
    ap.add_argument("--sets", default="mix,pairs,babble",
                    help="mix,pairs[,babble] (the training evaluations' score), clean and/or alias8k")
    ap.add_argument("--data", default=D.default_data_dir())
    ap.add_argument("--cache", default=D.DEFAULT_CACHE)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="write enhanced dev pairs as WAV here")
    a = ap.parse_args()
    sets = set(a.sets.split(","))
    if (not sets or not sets <= {"mix", "pairs", "babble", "clean", "alias8k"}
            or (("mix" in sets) != ("pairs" in sets)) or ("babble" in sets and "mix" not in sets)):
        ap.error(f"--sets {a.sets}: give mix,pairs (and babble with them), clean and/or alias8k")
    trainlib.blas_rerun(a.threads)  # OpenBLAS's best kernels (tools/trainlib.py)
    torch.set_num_threads(a.threads)
    corpus = D.Corpus(a.data, a.cache, verbose=False)
    mixtures = D.dev_mixtures(corpus) if "mix" in sets else None
    pairs = D.dev_pairs(a.data) if "pairs" in sets else None
    babble = D.dev_babble(corpus) if "babble" in sets else None
    clean = D.dev_clean(corpus) if "clean" in sets or "alias8k" in sets else None
    checks = ([("clean speech", clean)] if "clean" in sets else []) + (
        [("clean, 8k alias", [(n, D.alias8k(x)) for n, x in clean])] if "alias8k" in sets else [])
    if a.out:
        os.makedirs(a.out, exist_ok=True)
    for path in a.ckpt:
        m, ck = load_model(path, a.device)
        print(f"checkpoint {path}: step {ck['step']}, {ck['audio_s']/3600:.2f} h of audio seen")
        t0 = time.time()
        if mixtures is not None:
            print(format_result(evaluate(m, mixtures, pairs, a.device, a.out, babble)))
        for label, utts in checks:
            r = evaluate_clean(m, utts, a.device)
            print(f"{label:15s} SI-SDR mean {r['clean_si_sdr']:6.2f} dB  min {r['clean_min']:6.2f} dB "
                  f"({r['clean_worst']})  level {r['clean_level_db']:+.2f} dB  [{len(utts)} utterances]")
        print(f"({time.time()-t0:.1f} s)")

if __name__ == "__main__":
    main()
