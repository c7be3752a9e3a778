"""Which code trained a checkpoint: the training scripts record, for every
run (a start or a --resume), the step it started from, the commit checked
out when it started and whether tools/ had uncommitted changes then. A
checkpoint used to store the commit at the time it was saved, which names
the wrong code when commits land while a run goes on.

    runs = runinfo.start(ck, step)         # at start; ck: the resumed checkpoint or None
    ... checkpoint(..., commit=runs[-1]["commit"], runs=runs)
    runinfo.describe(ck)                   # in export: "steps 0-682 at 61db5f77a1b2; ..."

Also the pieces every training and export script needs: git_commit(),
atomic_save(), and for export the choice of weights (add_weights_arg,
weights, weights_note).
"""
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def git_commit(short=False):
    try:
        cmd = ["git", "-C", ROOT, "rev-parse"] + (["--short"] if short else []) + ["HEAD"]
        return subprocess.check_output(cmd, text=True, stderr=subprocess.DEVNULL).strip()
    except Exception:
        return "unknown"


def sha256_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def init_note(ck):
    """For an export's metadata: the weights file a run started from (train.py
    --init-osw / --init FILE.osw), or None."""
    init = ck.get("init_osw")
    if not init:
        return None
    extra = f", channels {','.join(str(c) for c in init['channels'])}" if "channels" in init else ""
    return (f"{os.path.basename(init['path'])} (sha256 {init['sha256'][:16]}, its step {init['step']}{extra}; "
            f"trained by: {init['command']})")


def load(path, device="cpu"):
    """torch.load of one of our checkpoints. They hold plain Python values beside the
    tensors (mixer RNG states, histories), which PyTorch 2.6 and later refuse unless
    told the file is trusted (weights_only=False); 1.13 has the argument too."""
    import torch
    return torch.load(path, map_location=device, weights_only=False)


def atomic_save(obj, path):
    """torch.save to a temporary file, then rename: a checkpoint is whole or absent."""
    import torch
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def add_weights_arg(ap):
    ap.add_argument("--weights", choices=("model", "ema"), default="model",
                    help="which weights of the checkpoint: 'model' (in best.pt: what the dev "
                         "evaluation scored, the moving average when the run kept one) or 'ema' "
                         "(the moving average stored beside the raw weights in last.pt)")


def weights(ck, which):
    """The state dict an export writes (see add_weights_arg)."""
    if which == "ema":
        if ck.get("ema") is None:
            raise SystemExit("export: this checkpoint has no moving average ('ema')")
        return ck["ema"]
    return ck["model"]


def weights_note(ck, which):
    """What the exported weights are, for the .osw metadata."""
    if ck.get("weights_note"):
        return ck["weights_note"]
    if which == "ema":
        return f"moving average of the weights (decay {ck.get('ema_decay')})"
    if ck.get("ema") is not None and ck.get("metrics") is not None:
        return f"as evaluated: moving average (decay {ck.get('ema_decay')})"
    return "the optimiser's weights at the saved step"


def tools_dirty():
    """True when tracked files under tools/ differ from the commit."""
    try:
        out = subprocess.check_output(["git", "-C", ROOT, "status", "--porcelain",
                                       "--untracked-files=no", "tools"], text=True,
                                      stderr=subprocess.DEVNULL)
        return bool(out.strip())
    except Exception:
        return True


def start(ck, step):
    """The runs list for a run starting at `step`: the resumed checkpoint's
    runs (an older checkpoint without any gives one entry for its commit, as
    recorded then) plus this one."""
    runs = []
    if ck is not None:
        runs = list(ck.get("runs") or [])
        if not runs:
            runs = [{"from_step": 0, "commit": ck.get("commit", "unknown"), "dirty": None,
                     "command": ck.get("command", ""), "started": ""}]
    runs.append({"from_step": step, "commit": git_commit(), "dirty": tools_dirty(),
                 "command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
    return runs


def describe(ck):
    """One line for a model card or .osw metadata."""
    runs = ck.get("runs")
    if not runs:
        return f"{ck.get('commit', 'unknown')[:12]} (the commit when the checkpoint was saved)"
    parts = []
    for i, r in enumerate(runs):
        end = runs[i + 1]["from_step"] if i + 1 < len(runs) else ck["step"]
        if end <= r["from_step"] and i + 1 < len(runs):
            continue  # a run that saved nothing new
        note = {True: " +uncommitted tools/ changes", None: " (recorded at save time)"}.get(
            r.get("dirty"), "")
        parts.append(f"steps {r['from_step']}-{end} at {r['commit'][:12]}{note}")
    return "; ".join(parts)
