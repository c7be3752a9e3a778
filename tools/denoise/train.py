"""Train the causal FRCRN-style denoiser (see README.md in this folder).

    nohup nice -n 10 /usr/bin/python3 tools/denoise/train.py --resume \
        > /work/ckpt/denoise/train.log 2>&1 &

Checkpoints (atomic: temp file + rename) go to --ckpt-dir: last.pt every --ckpt-every
minutes and on SIGTERM/SIGINT, best.pt whenever the dev score improves. --resume
continues from last.pt exactly (model, optimizer, step, learning-rate schedule, mixer
and torch RNG states). Dev evaluations are appended to dev.csv in --ckpt-dir.

On a machine without ../shared (a lent GPU; tools/gpu/denoise.sh): --pack FILE trains
from a subset packed by pack.py, --eval-every 0 (the dev sets are not there),
--workers N mixes in N processes (each its own stream, seeded by --seed, the step it
starts from and its number, so a resumed run is reproducible but not the stream an
uninterrupted one would have drawn), and --snapshot-every MIN keeps the averaged
weights as snap-STEP.pt to be scored back here (evaluate.py --ckpt) and exported.

--init-osw FILE starts a new run from exported weights (the shipped
models/denoise-16k.osw: it outlives the checkpoints), at their size or wider with
--model-cfg '{"channels": [...]}' (init_osw.py: the same function at step 0).
"""
import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data as D  # noqa: E402
import evaluate as E  # noqa: E402
import init_osw as IO  # noqa: E402
import model as M  # noqa: E402
import stft as S  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/
import runinfo  # noqa: E402
import trainlib  # noqa: E402


def si_snr(est, ref, eps=1e-8):
    est = est - est.mean(dim=-1, keepdim=True)
    ref = ref - ref.mean(dim=-1, keepdim=True)
    a = (est * ref).sum(-1, keepdim=True) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    t = a * ref
    return 10 * torch.log10(t.pow(2).sum(-1) / ((est - t).pow(2).sum(-1) + eps) + eps)


def compressed(X, c=0.3):
    mag = (X.real.pow(2) + X.imag.pow(2) + 1e-12).sqrt()
    g = mag.pow(c - 1)
    return X.real * g, X.imag * g, mag.pow(c)


_BANDS = {}


def third_octave_bands(device, dtype):
    """(15, 161) 0/1 matrix: STOI's one-third-octave bands (centres 150 Hz * 2^(k/3),
    edges at 2^(+-1/6)) on this STFT's bins; a band narrower than a bin takes the
    nearest bin."""
    key = (str(device), dtype)
    if key not in _BANDS:
        f = torch.arange(S.N_BINS, dtype=torch.float64) * S.SR / S.N_FFT
        m = torch.zeros(15, S.N_BINS, dtype=torch.float64)
        for b in range(15):
            cf = 150.0 * 2 ** (b / 3)
            sel = (f >= cf * 2 ** (-1 / 6)) & (f < cf * 2 ** (1 / 6))
            if not sel.any():
                sel[int(torch.argmin((f - cf).abs()))] = True
            m[b, sel] = 1
        _BANDS[key] = m.to(device=device, dtype=dtype)
    return _BANDS[key]


def stoi_loss(Y, Sc, seg=30, step=5, high=1.0):
    """1 - a differentiable short-time objective intelligibility (after Taal et al.
    2011, on this STFT grid: 10 ms frames): per one-third-octave band, the
    enhanced envelope over 300 ms segments is scaled to the clean one's energy,
    clipped at -15 dB signal-to-distortion, and correlated with it; segments
    more than 40 dB below the loudest clean one are left out. Y, Sc: (B, T, 161).
    high: weight of the bands from 1.9 kHz up (the last four) in the band mean; the
    shipped model loses its STOI there (tools/denoise/README.md)."""
    M = third_octave_bands(Y.device, Sc.real.dtype)
    ex = torch.sqrt(torch.matmul(Sc.real ** 2 + Sc.imag ** 2, M.t()) + 1e-10)   # (B, T, 15)
    ey = torch.sqrt(torch.matmul(Y.real ** 2 + Y.imag ** 2, M.t()) + 1e-10)
    x = ex.unfold(1, seg, step)                                                 # (B, n, 15, seg)
    y = ey.unfold(1, seg, step)
    y = y * (x.pow(2).sum(-1, keepdim=True) / y.pow(2).sum(-1, keepdim=True)).sqrt()
    y = torch.minimum(y, x * (1 + 10 ** (15 / 20)))
    xc, yc = x - x.mean(-1, keepdim=True), y - y.mean(-1, keepdim=True)
    d = (xc * yc).sum(-1) / (xc.norm(dim=-1) * yc.norm(dim=-1) + 1e-8)          # (B, n, 15)
    e = x.pow(2).sum((-1, -2))                                                  # (B, n)
    keep = (e > e.amax(1, keepdim=True) * 1e-4).to(d.dtype)
    if high != 1.0:
        w = torch.ones(d.shape[-1], dtype=d.dtype, device=d.device)
        w[-4:] = high
        dm = (d * w).sum(-1) / w.sum()
    else:
        dm = d.mean(-1)
    return 1 - (dm * keep).sum() / keep.sum()


MRSTFT = ((256, 64), (512, 128), (1024, 256))   # (n_fft, hop) at 16 kHz: 16, 32, 64 ms
_HANN = {}


def mrstft_loss(est, ref):
    """Multi-resolution STFT magnitude loss (Yamamoto et al. 2020, Parallel WaveGAN): mean
    over MRSTFT of spectral convergence ||S| - |E||_F / ||S||_F plus the mean absolute
    difference of log magnitudes. est, ref: (B, n), already at a common level."""
    total = 0.0
    for n_fft, hop in MRSTFT:
        key = (n_fft, str(est.device), est.dtype)
        if key not in _HANN:
            _HANN[key] = torch.hann_window(n_fft, device=est.device, dtype=est.dtype)
        w = _HANN[key]
        E = torch.stft(est, n_fft, hop, window=w, return_complex=True).abs()
        R = torch.stft(ref, n_fft, hop, window=w, return_complex=True).abs()
        sc = torch.linalg.norm(R - E, dim=(-2, -1)) / (torch.linalg.norm(R, dim=(-2, -1)) + 1e-7)
        lm = (torch.log(R + 1e-5) - torch.log(E + 1e-5)).abs().mean(dim=(-2, -1))
        total = total + (sc + lm).mean()
    return total / len(MRSTFT)


def loss_fn(model, noisy, clean, args):
    """-SI-SNR (in bels, i.e. dB/10) * w_sisnr + w_spec * (30 (MSE re + MSE im) + 70 MSE mag)
    on the power-0.3 compressed spectra, signals scaled to noisy RMS 0.05 for the spectral term,
    + w_stoi * stoi_loss + w_mrstft * mrstft_loss (at the same scale)."""
    n = noisy.shape[-1]
    X = S.stft(torch.nn.functional.pad(noisy, (0, S.WIN)))
    Y, _ = model(X)
    est = S.istft(Y, length=n)
    snr = si_snr(est, clean)
    loss = -snr.mean() / 10 * args.w_sisnr
    g = 0.05 / (noisy.pow(2).mean(-1, keepdim=True).sqrt() + 1e-6)   # (B, 1): noisy RMS -> 0.05
    if args.w_spec > 0:
        Sc = S.stft(torch.nn.functional.pad(clean, (0, S.WIN))) * g[:, :, None]
        Yr, Yi, Ym = compressed(Y * g[:, :, None])
        Sr, Si, Sm = compressed(Sc)
        spec = 30 * ((Yr - Sr).pow(2).mean() + (Yi - Si).pow(2).mean()) + 70 * (Ym - Sm).pow(2).mean()
        loss = loss + args.w_spec * spec
    else:
        spec = torch.zeros(())
    if args.w_stoi > 0:
        Sc = S.stft(torch.nn.functional.pad(clean, (0, S.WIN)))
        loss = loss + args.w_stoi * stoi_loss(Y, Sc, high=args.stoi_high)
    if args.w_mrstft > 0:   # at the spectral term's level: level-independent
        loss = loss + args.w_mrstft * mrstft_loss(est * g, clean * g)
    return loss, snr.mean().item(), float(spec)


def lr_at(step, args):
    warm = min(1.0, (step + 1) / args.warmup)
    decay = 0.5 ** (step / args.lr_halflife)
    return max(args.lr * warm * decay, args.lr_min * warm)


CSV_FIELDS = ["wall_time", "elapsed_h", "step", "audio_h", "lr", "train_loss", "train_sisnr", "train_spec",
              "mix_noisy", "mix_enh", "mix_-5_noisy", "mix_-5_enh", "mix_0_noisy", "mix_0_enh",
              "mix_5_noisy", "mix_5_enh", "mix_10_noisy", "mix_10_enh", "mix_15_noisy", "mix_15_enh",
              "pairs_noisy", "pairs_enh", "babble_noisy", "babble_enh", "babble_-5_noisy", "babble_-5_enh",
              "babble_0_noisy", "babble_0_enh", "babble_5_noisy", "babble_5_enh", "babble_10_noisy",
              "babble_10_enh", "babble_15_noisy", "babble_15_enh", "score", "best_score", "throughput"]


class MixStream(torch.utils.data.IterableDataset):
    """Training batches from one Mixer per DataLoader worker."""

    def __init__(self, corpus, args, start_step):
        super().__init__()
        self.corpus, self.args, self.start_step = corpus, args, start_step

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        a = self.args
        mixer = D.Mixer(self.corpus, seg_s=a.seg, seed=[a.seed, self.start_step, info.id if info else 0],
                        **mixer_kwargs(a))
        while True:
            yield mixer.batch(a.batch)


MIX_KEYS = {"p_reverb", "p_babble", "p_bandlimit", "p_two_noises", "p_speed", "p_speech_eq", "p_noise_eq",
            "p_noise_rumble", "p_clean", "p_alias", "alias_steep", "spk_pow", "p_talkers", "p_talker_room"}
# [LO, HI] keys: their bounds and unit
RANGE_KEYS = {"snr_range": (-30, 60, "dB"), "rumble_hz": (20, 2000, "Hz"), "tir_range": (-10, 30, "dB"),
              "babble_n": (1, 12, "talkers")}


def parse_mix_cfg(raw):
    """--mix-cfg JSON -> Mixer keyword arguments (probabilities in 0..1, snr_range [lo, hi] dB)."""
    cfg = json.loads(raw)
    if not isinstance(cfg, dict):
        raise ValueError("not a JSON object")
    out = {}
    for k, v in cfg.items():
        if k in RANGE_KEYS:
            lo, hi, unit = RANGE_KEYS[k]
            if (not isinstance(v, list) or len(v) != 2 or not all(isinstance(t, (int, float)) for t in v)
                    or not lo <= v[0] <= v[1] <= hi):
                raise ValueError(f"{k}: want [LO, HI] {unit} with {lo} <= LO <= HI <= {hi}, got {v!r}")
            out[k] = (float(v[0]), float(v[1]))
        elif k in MIX_KEYS:
            if not isinstance(v, (int, float)) or not 0 <= v <= 1:
                raise ValueError(f"{k}: want a probability in 0..1, got {v!r}")
            out[k] = float(v)
        else:
            raise ValueError(f"unknown key '{k}' (known: {', '.join(sorted(MIX_KEYS | set(RANGE_KEYS)))})")
    return out


def mixer_kwargs(args):
    return dict(args.mix_cfg, level_db=args.level_db, p_narrowband=args.p_narrowband)


def batches(corpus, mixer, args, start_step, dev):
    """An endless iterator of (noisy, clean) tensors on dev: from `mixer` in this
    process (--workers 0, the exactly resumable stream), else from worker processes."""
    if args.workers <= 0:
        while True:
            x, y = mixer.batch(args.batch)
            yield torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev)
    import multiprocessing
    dl = torch.utils.data.DataLoader(MixStream(corpus, args, start_step), batch_size=None,
                                     num_workers=args.workers, prefetch_factor=4, persistent_workers=True,
                                     pin_memory=dev == "cuda", multiprocessing_context=multiprocessing.get_context("fork"))
    for x, y in dl:
        yield x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    trainlib.add_run_args(ap, data=D.default_data_dir(), cache=D.DEFAULT_CACHE, ckpt_dir="/work/ckpt/denoise",
                          eval_every=10, log_every=50, ema=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seg", type=float, default=2.0, help="segment length, s")
    trainlib.add_lr_args(ap, lr=1e-3, lr_min=5e-5)
    ap.add_argument("--lr-halflife", type=float, default=30000, help="steps per halving of the lr")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--w-sisnr", type=float, default=1.0)
    ap.add_argument("--w-spec", type=float, default=1.0)
    ap.add_argument("--w-stoi", type=float, default=0.0,
                    help="weight of 1 - short-time envelope correlation (a differentiable STOI)")
    ap.add_argument("--stoi-high", type=float, default=1.0,
                    help="weight of the STOI term's bands from 1.9 kHz up against the others (1: equal)")
    ap.add_argument("--w-mrstft", type=float, default=0.0,
                    help="weight of a multi-resolution STFT magnitude loss (16/32/64 ms)")
    ap.add_argument("--level-db", default="%g,%g" % D.LEVEL_DB,
                    help="range of the training mixtures' RMS level, dBFS: --level-db=LO,HI (with =, the values are negative)")
    ap.add_argument("--p-narrowband", type=float, default=0.1,
                    help="share of training mixtures passed through 8 kHz and back (8 kHz-origin recordings)")
    ap.add_argument("--mix-cfg", default="{}",
                    help="JSON overrides of the training mixer: p_reverb (0.3), p_babble (0.15), p_bandlimit (0.2), "
                         "p_two_noises (0.2), snr_range ([-5, 20] dB); augmentations, 0 by default: p_speed (speech 0.9-1.1x as fast), "
                         "p_speech_eq and p_noise_eq (random peaking and shelving filters), p_noise_rumble (the noise's "
                         "lows under a corner in rumble_hz, [100, 300] Hz, raised 10-25 dB), p_clean (no noise at all: the target is the input's dry or early-reverb speech), "
                         "p_alias (8 kHz origin through a poor resampler: mix and target aliased below 4 kHz; "
                         "alias_steep of them through a steep filter at 4-5 kHz, the fold a narrow hump under 4 kHz); "
                         "spk_pow (speaker weights = duration ** spk_pow: 0, the default, by speaker; 1 by minute), "
                         "babble_n ([3, 6] talkers in the babble noise), p_talkers (competing talkers: 1-3 other "
                         "speakers tir_range, [0, 10] dB, below the target, each farther away with p_talker_room, 0.5)")
    ap.add_argument("--workers", type=int, default=0,
                    help="processes that mix training batches (0: this one, the exactly resumable stream)")
    ap.add_argument("--init-osw", metavar="FILE",
                    help="start a new run from these exported weights (init_osw.py); --model-cfg may widen them; "
                         "the moving average runs at its full decay from step 0 (its start is trained)")
    ap.add_argument("--train-new-only", action="store_true",
                    help="with --init-osw and a wider --model-cfg: train only what widening adds (init_osw.freeze_old); "
                         "the file's weights stay as they are")
    ap.add_argument("--freeze-bn", action="store_true",
                    help="batch norm uses its running statistics in training too (they stay fixed): the "
                         "function trained is the one evaluated and exported; gamma and beta still train")
    ap.add_argument("--keep-evals", action="store_true",
                    help="keep the evaluated weights of every evaluation as eval-STEP.pt (to choose by other "
                         "criteria than the score)")
    trainlib.add_gpu_args(ap)
    args = ap.parse_args()
    trainlib.resolve_lr_min(ap, args)
    trainlib.check_gpu_args(ap, args)
    if args.workers < 0:
        ap.error("--workers must be >= 0")
    if not 0 <= args.p_narrowband <= 1:
        ap.error(f"--p-narrowband must be in 0..1, got {args.p_narrowband:g}")
    try:
        args.mix_cfg = parse_mix_cfg(args.mix_cfg)
    except ValueError as e:
        ap.error(f"--mix-cfg: {e}")
    if args.mix_cfg.get("p_bandlimit", 0.2) + args.p_narrowband + args.mix_cfg.get("p_alias", 0) > 1:
        ap.error("--mix-cfg p_bandlimit and p_alias plus --p-narrowband must not exceed 1")
    raw = args.level_db
    try:
        args.level_db = tuple(float(v) for v in raw.split(","))
        if len(args.level_db) != 2 or not -120 <= args.level_db[0] <= args.level_db[1] <= 0:
            raise ValueError
    except ValueError:
        ap.error(f"--level-db: want LO,HI in dBFS with -120 <= LO <= HI <= 0, got '{raw}'")

    dev = trainlib.device(args)
    os.makedirs(args.ckpt_dir, exist_ok=True)
    last_path = os.path.join(args.ckpt_dir, "last.pt")
    best_path = os.path.join(args.ckpt_dir, "best.pt")
    csv_path = os.path.join(args.ckpt_dir, "dev.csv")

    ck = trainlib.resume_checkpoint(args, last_path)
    try:
        cfg_arg = json.loads(args.model_cfg)
        if not isinstance(cfg_arg, dict):
            raise ValueError("not a JSON object")
    except ValueError as e:
        ap.error(f"--model-cfg: {e}")
    init = None  # (file cfg, tensors, provenance) of --init-osw, new runs only
    if ck is not None:
        model_cfg = ck["model_cfg"]
        if args.init_osw:
            print(f"[train] resuming {last_path}: --init-osw ignored", flush=True)
    elif args.init_osw:
        try:
            tensors, meta = IO.osw.read_osw(args.init_osw)
            file_cfg = IO.cfg_from_file(meta, tensors)
        except (OSError, ValueError, IO.InitError) as e:
            ap.error(f"--init-osw {args.init_osw}: {e}")
        model_cfg = dict(file_cfg, **cfg_arg)
        init = (file_cfg, tensors, dict(path=args.init_osw, sha256=runinfo.sha256_file(args.init_osw),
                                         channels=file_cfg["channels"], init_cfg=file_cfg,
                                         step=meta.get("training_step", "?"),
                                         command=meta.get("training_command", "")))
    else:
        model_cfg = M.build(cfg_arg).cfg
    torch.manual_seed(args.seed)
    model = M.build(model_cfg)
    corpus = D.Corpus(args.data, args.cache, pack=args.pack)
    mixer = D.Mixer(corpus, seg_s=args.seg, seed=args.seed, **mixer_kwargs(args))
    init_info = ck.get("init_osw") if ck is not None else None
    if init is not None:
        try:
            IO.load_into(model, init[1], init[0])
        except IO.InitError as e:
            ap.error(f"--init-osw {args.init_osw}: {e}")
        # batch-norm statistics from 16 batches of another stream than the training one
        calib = D.Mixer(corpus, seg_s=args.seg, seed=args.seed + 7919, **mixer_kwargs(args))
        IO.calibrate_bn(model, [torch.from_numpy(calib.batch(args.batch)[0]) for _ in range(16)])
        init_info = init[2]
        print(f"[train] initialised from {args.init_osw} (step {init_info['step']}, channels "
              f"{init_info['channels']} -> {model_cfg['channels']}); batch norm calibrated on 16 batches", flush=True)
    if args.train_new_only:
        if not init_info or "init_cfg" not in init_info:
            ap.error("--train-new-only needs a run started with --init-osw (and a wider --model-cfg)")
        n = IO.freeze_old(model, init_info["init_cfg"])
        if n == 0:
            ap.error("--train-new-only: --model-cfg adds nothing to the file's model")
        print(f"[train] training only what widening added: {n} of {model.n_params()} parameters", flush=True)
    model = model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    step, audio_s, best, train_s = 0, 0.0, -1e9, 0.0
    history = []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, audio_s, best, train_s = ck["step"], ck["audio_s"], ck["best_score"], ck.get("train_s", 0.0)
        mixer.rng.bit_generator.state = ck["mixer_rng"]
        torch.set_rng_state(ck["torch_rng"])
        history = ck.get("history", [])
        print(f"[train] resumed {last_path}: step {step}, {audio_s/3600:.2f} h audio, best {best:.3f}", flush=True)
    ema = trainlib.make_ema(model, args, ck)
    net_eval = ema.model if ema is not None else model  # what evaluations score and best.pt keeps
    runs = runinfo.start(ck, step)
    trainlib.announce(dev, args, runs)
    print(f"[train] data: {mixer.summary}", flush=True)
    M.print_summary(model)
    sys.stdout.flush()
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    evals = args.eval_every > 0
    dev_mix = D.dev_mixtures(corpus) if evals else None
    dev_pairs = D.dev_pairs(args.data) if evals else None
    dev_babble = D.dev_babble(corpus) if evals else None

    stop = trainlib.stop_on_signals()

    def checkpoint(path, extra=None):
        obj = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, audio_s=audio_s, best_score=best,
                   train_s=train_s, mixer_rng=mixer.rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                   model_cfg=model_cfg, ema=ema.state_dict() if ema is not None else None,
                   ema_decay=args.ema, args=vars(args), commit=runs[-1]["commit"], runs=runs, history=history,
                   command=" ".join(sys.argv), data_summary=mixer.summary, init_osw=init_info,
                   saved=time.strftime("%Y-%m-%d %H:%M:%S"))
        if extra:
            obj.update(extra)
        runinfo.atomic_save(obj, path)

    acc = {"loss": 0.0, "snr": 0.0, "spec": 0.0, "n": 0, "t": 0.0, "audio": 0.0}
    win = {"loss": 0.0, "snr": 0.0, "spec": 0.0, "n": 0}

    def run_eval():
        nonlocal best
        t0 = time.time()
        res = E.evaluate(net_eval, dev_mix, dev_pairs, dev, babble=dev_babble)
        improved = res["score"] > best
        if improved:
            best = res["score"]
        n = max(1, win["n"])
        row = dict(wall_time=time.strftime("%Y-%m-%d %H:%M:%S"), elapsed_h=round(train_s / 3600, 3), step=step,
                   audio_h=round(audio_s / 3600, 3), lr=f"{lr_at(step, args):.2e}",
                   train_loss=round(win["loss"] / n, 4) if win["n"] else "",
                   train_sisnr=round(win["snr"] / n, 3) if win["n"] else "",
                   train_spec=round(win["spec"] / n, 5) if win["n"] else "",
                   best_score=round(best, 3),
                   throughput=round(acc["audio"] / acc["t"], 2) if acc["t"] else "")
        for k in CSV_FIELDS:
            if k in res:
                row[k] = round(res[k], 3)
        trainlib.append_csv(csv_path, CSV_FIELDS, row)
        history.append({k: row[k] for k in row})
        win.update(loss=0.0, snr=0.0, spec=0.0, n=0)
        print(f"[eval] step {step} ({time.time()-t0:.0f}s)\n" + E.format_result(res), flush=True)
        metrics = {k: v for k, v in res.items() if k != "pair_rows"}
        if args.keep_evals:
            checkpoint(os.path.join(args.ckpt_dir, f"eval-{step:07d}.pt"),
                       extra=dict(model=net_eval.state_dict(), metrics=metrics))
        if improved:
            checkpoint(best_path, extra=dict(model=net_eval.state_dict(), metrics=metrics))
            print(f"[eval] new best {best:.3f} -> {best_path}", flush=True)

    t_start = time.time()
    t_last_eval = t_last_ck = t_last_snap = time.time()
    if step == 0 and evals:
        run_eval()
        t_last_eval = time.time()
    model.train()
    if args.freeze_bn:
        for bn in list(model.enc_bn) + list(model.dec_bn):
            bn.frozen = True
    stream = batches(corpus, mixer, args, step, dev)
    while not stop["flag"]:
        t0 = time.time()
        x, y = next(stream)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        loss, snr, spec = loss_fn(model, x, y, args)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
        if torch.isfinite(gn):
            opt.step()
            if ema is not None:  # a run from trained weights averages at the full decay at once
                ema.update(model, None if init_info else step)
        else:
            print(f"[train] step {step}: non-finite gradient, skipped", flush=True)
        step += 1
        dt = time.time() - t0
        train_s += dt
        audio_s += args.batch * args.seg
        for d in (acc, win):
            d["loss"] += loss.item(); d["snr"] += snr; d["spec"] += spec; d["n"] += 1
        acc["t"] += dt; acc["audio"] += args.batch * args.seg
        if step % args.log_every == 0:
            n = acc["n"]
            print(f"[train] step {step} loss {acc['loss']/n:.4f} sisnr {acc['snr']/n:.2f} dB spec {acc['spec']/n:.4f} "
                  f"lr {lr_at(step, args):.2e} gnorm {float(gn):.2f} | {acc['audio']/acc['t']:.1f} s audio/s, "
                  f"{audio_s/3600:.2f} h seen", flush=True)
            acc.update(loss=0.0, snr=0.0, spec=0.0, n=0, t=0.0, audio=0.0)
        now = time.time()
        done = trainlib.done(args, t_start, step)
        if evals and now - t_last_eval >= args.eval_every * 60 or (done and 0 < args.eval_every <= args.minutes):
            run_eval()
            t_last_eval = time.time()
        if now - t_last_ck >= args.ckpt_every * 60 or done:
            checkpoint(last_path)
            t_last_ck = time.time()
        if args.snapshot_every > 0 and (now - t_last_snap >= args.snapshot_every * 60 or done):
            trainlib.snapshot(checkpoint, args.ckpt_dir, step, net_eval, ema, args)
            t_last_snap = time.time()
        if done:
            break
    checkpoint(last_path)
    print(f"[train] stopped at step {step}; saved {last_path}", flush=True)


if __name__ == "__main__":
    main()
