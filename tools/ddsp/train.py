#!/usr/bin/python3
"""Train a DDSP instrument model (see model.py) on one instrument (see data.py).

    nohup nice -n 19 /usr/bin/python3 tools/ddsp/train.py violin --resume \
        > /work/ckpt/ddsp/violin/train.log 2>&1 &

Loss: DDSP's multi-scale spectral loss (FFT 2048 ... 64, linear + log
magnitude) between the resynthesis (decoder -> harmonic + filtered noise ->
reverb, at 16 kHz) and the recording, on random crops (--frames at 100
frames/s). The evaluation (every --eval-every minutes, and at the end)
renders the held-out material in 4 s segments from its own features and
reports the same spectral distance for the model and for the 1/k-harmonic
baseline (model.baseline_audio, its gain fitted on the same segments), and
the ratio; eval.csv in --ckpt-dir keeps them.

Checkpoints (atomic: temp file + rename) in --ckpt-dir: last.pt every
--ckpt-every minutes, at the end and on SIGTERM/SIGINT; best.pt whenever the
held-out distance improves. --resume continues from last.pt exactly (model,
optimizer, step, batch and noise RNG states): N steps, then M more after a
resume, gives the same weights as N + M steps in one run (CPU, 1 thread).
--device auto trains on CUDA when present.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import data as D  # noqa: E402
import model as M  # noqa: E402

sys.path.insert(0, os.path.dirname(HERE))  # tools/ for runinfo.py
import runinfo  # noqa: E402
import trainlib  # noqa: E402

SEG_FRAMES = 400  # evaluation segments: 4 s


def segments(items, frames=SEG_FRAMES):
    """Held-out items cut into whole segments: f0p, loud [N, frames], audio [N, frames * HOP]."""
    f0, ld, au = [], [], []
    for it in items:
        n = len(it["f0"]) // frames
        for k in range(n):
            s = k * frames
            f0.append(it["f0p"][s:s + frames])
            ld.append(it["loud"][s:s + frames])
            au.append(it["audio"][s * M.HOP:(s + frames) * M.HOP])
    return (torch.from_numpy(np.stack(f0)), torch.from_numpy(np.stack(ld)),
            torch.from_numpy(np.stack(au)))


@torch.no_grad()
def evaluate(model, segs, dev, chunk=4, baseline=True):
    """Mean multi-scale spectral distance over the segments: model, and the
    1/k baseline with the best of a grid of gains (generous to it)."""
    model.eval()
    f0, ld, au = segs
    dm, n = 0.0, 0
    for i in range(0, len(f0), chunk):
        a, b, c = f0[i:i + chunk].to(dev), ld[i:i + chunk].to(dev), au[i:i + chunk].to(dev)
        g = torch.Generator(device="cpu").manual_seed(1000 + i)
        noise = (torch.rand(c.shape, generator=g) * 2 - 1).to(dev)
        y, _, _ = model(a, b, noise=noise)
        for j in range(len(a)):
            dm += float(M.spectral_loss(y[j:j + 1], c[j:j + 1]))
            n += 1
    res = {"model": dm / n, "segments": n}
    if baseline:
        best = None
        for gain in 10.0 ** (np.arange(-12, 13, 2) / 10.0):
            db = 0.0
            for i in range(0, len(f0), chunk):
                a, b, c = f0[i:i + chunk].to(dev), ld[i:i + chunk].to(dev), au[i:i + chunk].to(dev)
                y = M.baseline_audio(a, b, model.cfg["n_harmonics"], float(gain))
                for j in range(len(a)):
                    db += float(M.spectral_loss(y[j:j + 1], c[j:j + 1]))
            db /= n
            if best is None or db < best[0]:
                best = (db, float(gain))
        res["baseline"], res["baseline_gain"] = best
        res["ratio"] = res["model"] / res["baseline"]
    model.train()
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("instrument", help="violin, clarinet, saxophone (data.py)")
    trainlib.add_run_args(ap, data=None, cache=D.DEFAULT_CACHE, ckpt_dir=None, eval_every=20, log_every=20,
                          ckpt_help="default /work/ckpt/ddsp/INSTRUMENT",
                          eval_help="minutes (0: only at the end)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=400, help="crop length in frames (100/s)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-halflife", type=float, default=40000, help="steps per halving")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--clip", type=float, default=3.0)
    ap.add_argument("--no-eval", action="store_true", help="skip evaluations (smoke runs)")
    args = ap.parse_args()

    dev = trainlib.device(args)
    ckdir = args.ckpt_dir or f"/work/ckpt/ddsp/{args.instrument}"
    os.makedirs(ckdir, exist_ok=True)
    last_path, best_path = os.path.join(ckdir, "last.pt"), os.path.join(ckdir, "best.pt")
    csv_path = os.path.join(ckdir, "eval.csv")

    ck = trainlib.resume_checkpoint(args, last_path)
    if ck is not None:
        if ck["instrument"] != args.instrument:
            raise SystemExit(f"{last_path} is a {ck['instrument']} run, not {args.instrument}")
        model_cfg = ck["model_cfg"]
    else:
        model_cfg = M.build(json.loads(args.model_cfg)).cfg
    torch.manual_seed(args.seed)
    model = M.build(model_cfg).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    corpus = D.Corpus(args.instrument, args.data, args.cache)
    rng = np.random.default_rng(args.seed)
    step, train_s, best, history = 0, 0.0, float("inf"), []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, train_s, best, history = ck["step"], ck["train_s"], ck["best"], ck["history"]
        rng.bit_generator.state = ck["batch_rng"]
        torch.set_rng_state(ck["torch_rng"])
        if dev == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"])
        print(f"[train] resumed {last_path}: step {step}, best {best:.4f}", flush=True)
    runs = runinfo.start(ck, step)
    trainlib.announce(dev, args, runs)
    print(f"[train] data: {corpus.summary}", flush=True)
    print(f"[train] model {json.dumps(model_cfg)}: {model.n_params()} params, "
          f"{model.macs_per_frame()} MAC/frame ({model.macs_per_frame() * M.FRAME_RATE / 1e6:.1f} "
          "M MAC/s)", flush=True)
    segs = None if args.no_eval else segments(corpus.held)

    stop = trainlib.stop_on_signals()

    def checkpoint(path, extra=None):
        obj = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, train_s=train_s,
                   best=best, history=history, batch_rng=rng.bit_generator.state,
                   torch_rng=torch.get_rng_state(),
                   cuda_rng=torch.cuda.get_rng_state() if dev == "cuda" else None,
                   model_cfg=model_cfg, instrument=args.instrument, args=vars(args),
                   commit=runs[-1]["commit"], runs=runs, command=" ".join(sys.argv),
                   data_summary=corpus.summary,
                   loudness_ref_db=corpus.loudness_ref_db, f0_range=corpus.f0_range,
                   held_out=[os.path.basename(it["path"]) for it in corpus.held],
                   saved=time.strftime("%Y-%m-%d %H:%M:%S"))
        if extra:
            obj.update(extra)
        runinfo.atomic_save(obj, path)

    def run_eval():
        nonlocal best
        t0 = time.time()
        r = evaluate(model, segs, dev)
        improved = r["model"] < best
        if improved:
            best = r["model"]
        row = dict(wall_time=time.strftime("%Y-%m-%d %H:%M:%S"), step=step,
                   train_h=round(train_s / 3600, 3), model=round(r["model"], 4),
                   baseline=round(r["baseline"], 4), ratio=round(r["ratio"], 4),
                   baseline_gain=round(r["baseline_gain"], 3), segments=r["segments"],
                   best=round(best, 4))
        trainlib.append_csv(csv_path, list(row), row)
        history.append(row)
        print(f"[eval] step {step}: held-out spectral distance {r['model']:.4f}, baseline "
              f"{r['baseline']:.4f} (gain {r['baseline_gain']:.2f}), ratio {r['ratio']:.3f} "
              f"({(1 - r['ratio']) * 100:.1f} % lower){' *' if improved else ''} "
              f"[{time.time() - t0:.0f} s]", flush=True)
        if improved:
            checkpoint(best_path, {"metrics": r})

    t_start = time.time()
    t_ck = t_ev = time.time()
    acc, acc_n, t_acc = 0.0, 0, time.time()
    model.train()
    while not stop["flag"]:
        if trainlib.done(args, t_start, step):
            break
        t0 = time.time()
        f0, ld, au = corpus.batch(rng, args.batch, args.frames)
        f0, ld, au = (torch.from_numpy(x).to(dev) for x in (f0, ld, au))
        noise = torch.rand(au.shape, device=dev) * 2 - 1
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 ** (step / args.lr_halflife)
        for g in opt.param_groups:
            g["lr"] = lr
        y, _, _ = model(f0, ld, noise=noise)
        loss = M.spectral_loss(y, au)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = float(torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip))
        opt.step()
        step += 1
        train_s += time.time() - t0
        acc += float(loss)
        acc_n += 1
        if step % args.log_every == 0 or step == 1:
            dt = time.time() - t_acc
            print(f"[train] step {step} loss {acc / acc_n:.4f} grad {gn:.2f} lr {lr:.2e} "
                  f"{dt / acc_n:.2f} s/step", flush=True)
            acc, acc_n, t_acc = 0.0, 0, time.time()
        if time.time() - t_ck > 60 * args.ckpt_every:
            checkpoint(last_path)
            t_ck = time.time()
        if segs is not None and args.eval_every and time.time() - t_ev > 60 * args.eval_every:
            run_eval()
            t_ev = time.time()
    checkpoint(last_path)
    if segs is not None and (not history or history[-1]["step"] != step):
        run_eval()
        checkpoint(last_path)
    print(f"[train] stopped at step {step} ({train_s / 3600:.2f} h of training)", flush=True)


if __name__ == "__main__":
    main()
