"""The scaffolding the three training scripts (tools/denoise, tools/vocoder,
tools/ddsp train.py) share: the run arguments, the device, stopping cleanly on
SIGTERM/SIGINT, loading the checkpoint to resume, the moving average of the
weights, the dev-score CSV and the time/step limit, and what training on a lent
GPU machine needs (a packed data subset, snapshots to score elsewhere). Each
script keeps its model, data, losses and evaluation.

    ap = argparse.ArgumentParser(...)
    trainlib.add_run_args(ap, data=D.default_data_dir(), cache=D.DEFAULT_CACHE,
                          ckpt_dir="/work/ckpt/x", eval_every=10, log_every=50, ema=True)
    ... script arguments ...
    args = ap.parse_args()
    dev = trainlib.device(args)
    ck = trainlib.resume_checkpoint(args, last_path)     # None: a new run
    stop = trainlib.stop_on_signals()                     # stop["flag"] turns True
    while not stop["flag"]: ... if trainlib.done(args, t_start, step): ...
"""
import csv
import ctypes
import lzma
import os
import signal
import sys
import time

import numpy as np


class Ema:
    """Exponential moving average of a model's weights, updated after each
    optimiser step: w_ema = decay * w_ema + (1 - decay) * w. Evaluating and
    exporting the average instead of the last step's weights smooths out the
    step-to-step noise of small-batch training (about 1 / (1 - decay) steps
    are averaged). Buffers are copied as they are. Given the step, the decay
    warms up as min(decay, (1 + step) / (10 + step)): a new run's average
    does not drag its untrained start along for thousands of steps (with
    0.999 from step 0, 26 % of the average is still the initial weights at
    step 1350), while a resumed or fine-tuned run, far past the warm-up,
    averages at the full decay."""

    def __init__(self, model, decay):
        import copy
        self.decay = decay
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def update(self, model, step=None):
        import torch
        d = self.decay if step is None else min(self.decay, (1.0 + step) / (10.0 + step))
        with torch.no_grad():
            for pe, p in zip(self.model.parameters(), model.parameters()):
                pe.mul_(d).add_(p.detach(), alpha=1.0 - d)
            for be, b in zip(self.model.buffers(), model.buffers()):
                be.copy_(b)

    def state_dict(self):
        return self.model.state_dict()

    def load_state_dict(self, sd):
        self.model.load_state_dict(sd)


def make_ema(model, args, ck):
    """The run's moving average (None with --ema 0), resumed from ck when it has one.
    Evaluations score ema.model and best.pt keeps it."""
    if args.ema <= 0:
        return None
    ema = Ema(model, args.ema)
    if ck is not None and ck.get("ema") is not None:
        ema.load_state_dict(ck["ema"])
    return ema


def add_run_args(ap, data, cache, ckpt_dir, eval_every, log_every, ema=False,
                 ckpt_help=None, eval_help="minutes"):
    """The arguments every training run has (defaults per script)."""
    ap.add_argument("--data", default=data)
    ap.add_argument("--cache", default=cache)
    ap.add_argument("--ckpt-dir", default=ckpt_dir, help=ckpt_help)
    ap.add_argument("--resume", action="store_true", help="continue from CKPT_DIR/last.pt if it exists")
    ap.add_argument("--minutes", type=float, default=0, help="stop after this many minutes (0: until killed)")
    ap.add_argument("--max-steps", type=int, default=0, help="stop at this total step count (0: no limit)")
    ap.add_argument("--device", default="auto", help="cpu, cuda, or auto (cuda when available)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-every", type=float, default=eval_every, help=eval_help)
    ap.add_argument("--ckpt-every", type=float, default=5, help="minutes")
    ap.add_argument("--log-every", type=int, default=log_every, help="steps")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model-cfg", default="{}", help="JSON dict of the model's configuration (new runs only)")
    if ema:
        ap.add_argument("--ema", type=float, default=0.999,
                        help="decay of the weights' moving average that is evaluated and exported (0: off)")


def add_lr_args(ap, lr, lr_min):
    """--lr and --lr-min, the floor of a decaying schedule (max(decayed lr, lr_min));
    resolve_lr_min after parsing."""
    ap.add_argument("--lr", type=float, default=lr)
    ap.add_argument("--lr-min", type=float, default=None,
                    help=f"floor of the decaying lr (default: {lr_min:g}, or --lr when that is lower)")
    ap.lr_min_default = lr_min  # on the parser, not in args (which checkpoints record)


def resolve_lr_min(ap, args):
    """The floor never raises --lr: it defaults to the lower of the script's floor and
    --lr, and an --lr-min above --lr is refused (a "2.5e-5" denoiser run of
    2026-12-04 had trained at the 5e-5 floor without a word)."""
    if args.lr_min is None:
        args.lr_min = min(ap.lr_min_default, args.lr)
    elif args.lr_min > args.lr:
        ap.error(f"--lr-min {args.lr_min:g} is above --lr {args.lr:g}: the run would train at "
                 f"--lr-min; lower it or raise --lr")


# OpenBLAS 0.3.21's x86-64 kernel sets by the instructions they use (as
# src/nn/kernels.c): 0 older than AVX, 1 AVX, 3 AVX2 + FMA, 4 AVX-512, 5 with BF16.
BLAS_CORES = {"Prescott": 0, "Core2": 0, "Penryn": 0, "Dunnington": 0, "Nehalem": 0, "Atom": 0,
              "Sandybridge": 1, "Haswell": 3, "Zen": 3, "SkylakeX": 4, "Cooperlake": 5,
              "SapphireRapids": 5}
BLAS_BEST = {3: "Haswell", 4: "SkylakeX", 5: "Cooperlake"}


def cpu_level(flags=None):
    """This CPU's level on the scale of BLAS_CORES (flags: /proc/cpuinfo's)."""
    if flags is None:
        try:
            with open("/proc/cpuinfo") as f:
                line = next((ln for ln in f if ln.startswith("flags")), "")
        except OSError:
            return 0
        flags = set(line.split(":", 1)[-1].split())
    avx512 = {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags
    if avx512:
        return 5 if "avx512_bf16" in flags else 4
    if {"avx2", "fma"} <= flags:
        return 3
    return 1 if "avx" in flags else 0


def blas_coretype_for(current, level):
    """The OPENBLAS_CORETYPE that gives a CPU of this level better kernels than
    `current`, or None (also for a name not in BLAS_CORES)."""
    if current not in BLAS_CORES or level not in BLAS_BEST:
        return None
    return BLAS_BEST[level] if BLAS_CORES[current] < level else None


def openblas_corename():
    """The kernel set of the OpenBLAS this process loaded (numpy and torch use
    it), or None."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "libopenblas" in ln and ".so" in ln})
        for lib in libs:
            fn = ctypes.CDLL(lib).openblas_get_corename
            fn.restype = ctypes.c_char_p
            return fn().decode()
    except (OSError, AttributeError, IndexError):
        pass
    return None


def blas_rerun(threads):
    """OpenBLAS reads OPENBLAS_CORETYPE and OPENBLAS_NUM_THREADS only when it
    loads. 0.3.21 falls back to its Prescott (SSE3) kernels on CPUs it does not
    know (on an Emerald Rapids Xeon torch's matmul ran at 29 GFLOP/s instead of
    109, and training 2.6-2.8 x slower), and starts worker threads that spin
    beside a one-thread run. So where either variable is unset and would
    matter, the script runs itself again with it set (once: they are then set;
    values the user set are kept)."""
    env = {}
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        env["OPENBLAS_NUM_THREADS"] = str(max(1, threads))
    core = openblas_corename()
    want = blas_coretype_for(core, cpu_level()) if "OPENBLAS_CORETYPE" not in os.environ else None
    if want:
        env["OPENBLAS_CORETYPE"] = want
    if not env or core is None:
        return
    print(f"[blas] OpenBLAS kernels {core}" + (f", older than this CPU's {want}" if want else "") +
          ": running again with " + " ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    os.environ.update(env)
    argv = getattr(sys, "orig_argv", None) or [sys.executable] + sys.argv
    os.execv(sys.executable, argv)


def device(args):
    """Set torch's CPU threads (first making OpenBLAS load its best kernels,
    with as many threads: blas_rerun); the device to train on ("auto": CUDA
    when present)."""
    blas_rerun(args.threads)
    import torch
    torch.set_num_threads(args.threads)
    if args.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return args.device


def resume_checkpoint(args, last_path):
    """The checkpoint to continue (--resume and last.pt exists), else None."""
    if not (args.resume and os.path.exists(last_path)):
        return None
    import runinfo
    return runinfo.load(last_path)


def stop_on_signals():
    """A flag that SIGTERM and SIGINT set: the loop checkpoints and ends."""
    stop = {"flag": False}

    def on_signal(sig, frm):
        stop["flag"] = True
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def done(args, t_start, step):
    """--minutes or --max-steps reached."""
    return (args.minutes > 0 and time.time() - t_start >= args.minutes * 60) or \
        (0 < args.max_steps <= step)


def append_csv(path, fields, row):
    """One row to a CSV file, with the header when the file is new."""
    new = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        if new:
            w.writeheader()
        w.writerow(row)


def announce(dev, args, runs):
    import json
    print(f"[train] device {dev}, threads {args.threads}, commit {runs[-1]['commit']}"
          f"{' +uncommitted tools/ changes' if runs[-1]['dirty'] else ''}", flush=True)
    print("[train] args:", json.dumps(vars(args)), flush=True)


def add_gpu_args(ap):
    """--pack and --snapshot-every: training where ../shared is not (a lent GPU;
    tools/gpu/). check_gpu_args after parsing."""
    ap.add_argument("--pack", help="train from this file of the folder's pack.py instead of --data "
                                   "(needs --eval-every 0: it holds no dev data)")
    ap.add_argument("--snapshot-every", type=float, default=0,
                    help="minutes between snap-STEP.pt files of the evaluated (averaged) weights, "
                         "to score elsewhere (0: none)")


def check_gpu_args(ap, args):
    if args.pack and args.eval_every > 0:
        ap.error("--pack holds training data only: give --eval-every 0 and score snapshots where the dev sets are")
    if args.snapshot_every < 0:
        ap.error("--snapshot-every must be >= 0")


def snapshot(checkpoint, ckpt_dir, step, net_eval, ema, args):
    """snap-STEP.pt: `checkpoint` (the script's own, which takes a path and extra
    entries) with the evaluated weights as its model and no optimiser state, so
    that export.py takes it like a best.pt."""
    path = os.path.join(ckpt_dir, f"snap-{step:07d}.pt")
    note = (f"moving average (decay {args.ema})" if ema is not None else "the optimiser's weights") + \
        f" at step {step}, a snapshot of a run not evaluated where it trained"
    checkpoint(path, extra=dict(model=net_eval.state_dict(), opt=None, ema=None, history=[], weights_note=note))
    print(f"[train] snapshot {path}", flush=True)


def encode_int16(x):
    """Lossless compression of int16 audio for packs: first difference, zigzag to
    unsigned, the four bytes of each value as separate planes, xz. Speech and noise
    come to 42-55 % of their int16 size (FLAC: about 44 %), and reading needs
    numpy and the standard library alone (no soundfile on a lent GPU machine)."""
    d = np.diff(x.astype(np.int32), prepend=np.int32(0))
    z = ((d << 1) ^ (d >> 31)).astype(np.uint32)
    planes = np.ascontiguousarray(z.view(np.uint8).reshape(-1, 4).T)
    return np.frombuffer(lzma.compress(planes.tobytes(), preset=6), np.uint8)


def decode_int16(blob, n):
    """encode_int16's inverse; n: the number of samples."""
    planes = np.frombuffer(lzma.decompress(blob.tobytes()), np.uint8).reshape(4, n)
    z = np.ascontiguousarray(planes.T).view(np.uint32).reshape(n).astype(np.int64)
    d = (z >> 1) ^ -(z & 1)
    return np.cumsum(d).astype(np.int16)
