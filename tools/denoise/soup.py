#!/usr/bin/python3
"""Average the weights of runs fine-tuned from one start (a "model soup":
Wortsman et al. 2022, "Model soups: averaging weights of multiple fine-tuned
models improves accuracy without increasing inference time").

    /usr/bin/python3 tools/denoise/soup.py CK1 CK2 [...] --out SOUP.pt [--weights ema|model]

Each checkpoint gives the weights its evaluations score: the moving average
('ema', default; last.pt and eval-STEP.pt both hold it) or 'model' (what a
best.pt or eval-STEP.pt scored). Every floating-point tensor, batch-norm
statistics included, is the plain mean; integer tensors (counters) come from
the first. The checkpoints must share one model configuration. SOUP.pt holds
the mean as its 'model', no optimiser state, and the first checkpoint's
metadata (configuration, command, runs) plus a note of what was averaged, so
that evaluate.py and export.py take it as they take a best.pt:

    /usr/bin/python3 tools/denoise/evaluate.py --ckpt SOUP.pt
    /usr/bin/python3 tools/denoise/export.py --ckpt SOUP.pt --out models/denoise-16k.osw
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import runinfo  # noqa: E402


def soup(paths, which):
    cks = [runinfo.load(p) for p in paths]
    cfg = cks[0]["model_cfg"]
    for p, ck in zip(paths, cks):
        if ck["model_cfg"] != cfg:
            raise SystemExit(f"soup: {p}: another model configuration than {paths[0]}")
    sds = [runinfo.weights(ck, which) for ck in cks]
    keys = list(sds[0])
    for p, sd in zip(paths, sds):
        if list(sd) != keys:
            raise SystemExit(f"soup: {p}: other tensors than {paths[0]}")
    mean = {}
    for k in keys:
        t = sds[0][k]
        if t.is_floating_point():
            mean[k] = torch.stack([sd[k].double() for sd in sds]).mean(0).to(t.dtype)
        else:
            mean[k] = t.clone()
    parts = [f"{p} (step {ck['step']})" for p, ck in zip(paths, cks)]
    out = dict(cks[0])
    out.update(model=mean, opt=None, ema=None, history=[], metrics={},
               weights_note=f"mean of the {'moving-average' if which == 'ema' else 'evaluated'} "
                            f"weights of {len(paths)} checkpoints: " + "; ".join(parts),
               soup=[dict(path=p, step=ck["step"], audio_s=ck["audio_s"], command=ck.get("command", ""))
                     for p, ck in zip(paths, cks)],
               step=max(ck["step"] for ck in cks),
               audio_s=max(ck["audio_s"] for ck in cks))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ckpts", nargs="+", help="checkpoints (last.pt, eval-STEP.pt, best.pt) of one model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--weights", choices=("ema", "model"), default="ema",
                    help="which weights of each checkpoint (default: the moving average)")
    a = ap.parse_args()
    if len(a.ckpts) < 2:
        ap.error("give at least two checkpoints")
    out = soup(a.ckpts, a.weights)
    runinfo.atomic_save(out, a.out)
    print(f"soup: {out['weights_note']} -> {a.out}")


if __name__ == "__main__":
    main()
