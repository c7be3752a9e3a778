"""Train the APNet-style vocoder (model.py) on clean speech (data.py).

    nohup nice -n 19 /usr/bin/python3 tools/vocoder/train.py --resume --threads 1 \
        >> /work/ckpt/vocoder/train.log 2>&1 &

Losses (APNet, Ai and Ling 2023; no adversarial terms yet), on crops of
--frames frames of which the first --context frames and the last `lookahead`
frames only give the network its context (no loss there):
  45  x L_A    MSE of log-amplitude, predicted vs log(|X| + 1e-5)
  100 x L_P    anti-wrapped (f(x) = |x - 2 pi round(x / 2 pi)|) mean errors of the
               instantaneous phase, the group delay (difference along frequency)
               and the phase time difference (along frames)
  20  x L_S    STFT consistency (mean squared |STFT(iSTFT(X')) - X'| over frames
               that the crop's overlap-add covers fully) + 2.25 x (L1 real + L1 imag
               of X' vs X)
  45  x L_Mel  L1 between the log mel of the generated and of the true waveform
               (the front end of audio.py, inner frames)
X: true spectrum on the synthesis grid, X' = exp(log-amplitude) e^{j phase}.

Checkpoints (atomic: temp file + rename) in --ckpt-dir: last.pt every --ckpt-every
minutes, at the end and on SIGTERM/SIGINT; best.pt when the dev score (mel L1 of
whole dev utterances vocoded as the C code does) improves. --resume continues
last.pt exactly (model, optimiser, step, schedule, crop and torch RNG states).
Dev evaluations go to dev.csv, training loss lines to the log.

On a machine without ../shared (a lent GPU; tools/gpu/vocoder.sh): --pack FILE trains
from pack.py's subset, with --eval-every 0, and --snapshot-every MIN keeps the averaged
weights as snap-STEP.pt to score back here.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import audio as A  # noqa: E402
import data as D  # noqa: E402
import model as M  # noqa: E402
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tools/
import runinfo  # noqa: E402
import trainlib  # noqa: E402

TWO_PI = 2 * math.pi


def anti_wrap(x):
    return torch.abs(x - TWO_PI * torch.round(x / TWO_PI))


def phase_losses(p_g, p_r):
    """Instantaneous phase, group delay, phase time difference; [B, T, K]."""
    ip = anti_wrap(p_g - p_r).mean()
    gd = anti_wrap(torch.diff(p_g, dim=-1) - torch.diff(p_r, dim=-1)).mean()
    ptd = anti_wrap(torch.diff(p_g, dim=-2) - torch.diff(p_r, dim=-2)).mean()
    return ip, gd, ptd


EDGE = A.WIN // A.HOP - 1  # frames at each end of a crop that overlap-add does not cover fully


def diff_losses(model, mel, wav, ctx, amp_only=False):
    """Phase-difference model (cfg phase "diff"): 45 x L_A as above plus
    100 x L_D, the anti-wrapped errors of the predicted time and frequency
    differences, each weighted by the geometric mean magnitude of the two
    coefficients it joins (where the phase matters), plus 0.1 x their
    unweighted means (so quiet bins are not left to chance). amp_only: 45 x L_A
    alone (the phase predictor is frozen and not run)."""
    la = model.cfg["lookahead"]
    x = model.features(mel)
    (logamp,) = model.amp(x)
    X = A.frames_of(wav, A.N_FFT)
    ph, mag = torch.angle(X), X.abs()
    sl = slice(ctx, mel.shape[1] - la)
    L_A = torch.mean((logamp[:, sl] - torch.log(mag[:, sl] + 1e-5)) ** 2)
    if amp_only:
        return 45 * L_A, dict(A=L_A.item())
    dt, df = model.diffs(x)
    e_t = anti_wrap(dt[:, 1:] - (ph[:, 1:] - ph[:, :-1]))[:, ctx - 1:mel.shape[1] - la - 1]
    w_t = torch.sqrt(mag[:, 1:] * mag[:, :-1])[:, ctx - 1:mel.shape[1] - la - 1]
    e_f = anti_wrap(df[..., :-1] - (ph[..., 1:] - ph[..., :-1]))[:, sl]
    w_f = torch.sqrt(mag[..., 1:] * mag[..., :-1])[:, sl]
    L_T = (e_t * w_t).sum() / (w_t.sum() + 1e-9) + 0.1 * e_t.mean()
    L_F = (e_f * w_f).sum() / (w_f.sum() + 1e-9) + 0.1 * e_f.mean()
    total = 45 * L_A + 100 * (L_T + L_F)
    return total, dict(A=L_A.item(), T=L_T.item(), F=L_F.item())


class AmpCritic(torch.nn.Module):
    """Least-squares GAN critic of log-amplitude spectrogram patches (--adv-amp).
    An amplitude trained on MSE alone predicts the conditional mean, which blurs
    harmonic peaks and noise texture; the critic scores [B, T, 161] patches of
    11 frames (55 ms) by most of the band, as HiFi-GAN's discriminators score
    waveforms. Five weight-normalised 2-D convolutions, 16 channels, stride 2
    along frequency in the first three; returns every layer's output (the last
    is the score map) for the feature-matching loss."""

    def __init__(self, ch=16):
        super().__init__()
        wn = torch.nn.utils.weight_norm
        C = torch.nn.Conv2d
        self.layers = torch.nn.ModuleList([
            wn(C(1, ch, (3, 7), (1, 2), (1, 3))), wn(C(ch, ch, (3, 7), (1, 2), (1, 3))),
            wn(C(ch, ch, (3, 7), (1, 2), (1, 3))), wn(C(ch, ch, (3, 5), (1, 1), (1, 2))),
            wn(C(ch, 1, (3, 3), (1, 1), (1, 1)))])

    def forward(self, logamp):  # [B, T, K]
        x = ((logamp + 5.0) / 3.0)[:, None]
        feats = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.nn.functional.leaky_relu(x, 0.1)
            feats.append(x)
        return feats


def amp_pair(model, mel, wav, ctx):
    """The predicted and the true log-amplitude over the frames the loss sees."""
    la = model.cfg["lookahead"]
    (logamp,) = model.amp(model.features(mel))
    X = A.frames_of(wav, A.N_FFT)
    sl = slice(ctx, mel.shape[1] - la)
    return logamp[:, sl], torch.log(X[:, sl].abs() + 1e-5)


def adv_amp_losses(critic, fake, real, w_adv):
    """Generator side: 45 x L_A + w_adv x (LSGAN (D(fake) - 1)^2 + 2 x feature
    matching L1 over the critic's layers), HiFi-GAN's proportions."""
    L_A = torch.mean((fake - real) ** 2)
    ff = critic(fake)
    with torch.no_grad():
        fr = critic(real)
    adv = torch.mean((ff[-1] - 1) ** 2)
    fm = sum(torch.mean(torch.abs(a - b)) for a, b in zip(ff[:-1], fr[:-1]))
    return 45 * L_A + w_adv * (adv + 2 * fm), dict(A=L_A.item(), adv=adv.item(), fm=float(fm))


def critic_loss(critic, fake, real):
    return torch.mean((critic(real)[-1] - 1) ** 2) + torch.mean(critic(fake.detach())[-1] ** 2)


def losses(model, mel, wav, ctx, w_ip=1.0, amp_only=False):
    """mel [B, F, 80], wav [B, (F-1)*80+320] (frame t = wav[t*80 : t*80+320]);
    w_ip scales the instantaneous-phase term within L_P; amp_only (phase-difference
    models): the amplitude loss alone."""
    if model.diff:
        return diff_losses(model, mel, wav, ctx, amp_only)
    la = model.cfg["lookahead"]
    logamp, phase, _ = model(mel)
    X = A.frames_of(wav, A.N_FFT)                     # true spectrum [B, F, 161]
    sl = slice(ctx, mel.shape[1] - la)               # frames the loss sees
    lg, pg = logamp[:, sl], phase[:, sl]
    Xr = X[:, sl]
    la_true = torch.log(Xr.abs() + 1e-5)
    L_A = torch.mean((lg - la_true) ** 2)
    ip, gd, ptd = phase_losses(pg, torch.angle(Xr))
    L_P = w_ip * ip + gd + ptd
    Xg = model.spectrum(lg, pg)
    L_R = torch.mean(torch.abs(Xg.real - Xr.real))
    L_I = torch.mean(torch.abs(Xg.imag - Xr.imag))
    y_g = A.ola(Xg)                                   # waveform over the loss frames
    Xc = A.frames_of(y_g, A.N_FFT)[:, EDGE:-EDGE]     # re-analysis, fully covered frames
    Xi = Xg[:, EDGE:-EDGE]
    L_C = torch.mean((Xc.real - Xi.real) ** 2 + (Xc.imag - Xi.imag) ** 2)
    L_S = L_C + 2.25 * (L_R + L_I)
    y_r = wav[:, ctx * A.HOP: ctx * A.HOP + y_g.shape[-1]]
    L_Mel = torch.mean(torch.abs(A.logmel_from_frames(y_g)[:, EDGE:-EDGE] -
                                 A.logmel_from_frames(y_r)[:, EDGE:-EDGE]))
    total = 45 * L_A + 100 * L_P + 20 * L_S + 45 * L_Mel
    parts = dict(A=L_A.item(), IP=ip.item(), GD=gd.item(), PTD=ptd.item(), C=L_C.item(),
                 RI=(L_R + L_I).item(), Mel=L_Mel.item())
    return total, parts


@torch.no_grad()
def evaluate(model, corpus, ids, dev):
    """Whole dev utterances, vocoded like the C code (whole-sequence forward =
    streaming + drain): mean mel L1 of the result vs the input mel, log-spectral
    distance (dB) on the synthesis grid, and the amplitude/phase losses."""
    model.eval()
    mel_l1 = lsd = la = ip = 0.0
    for i in ids:
        a, m = corpus.utt(i)
        m = torch.from_numpy(m)[None].to(dev)
        logamp, phase, _ = model(m)
        y = A.istft(model.spectrum(logamp, phase))     # T*80 - 240 samples
        T = m.shape[1] - EDGE                           # frames y covers whole
        mel_l1 += torch.mean(torch.abs(A.logmel(y)[:, :T] - m[:, :T])).item()
        Xt = A.frames_of(torch.from_numpy(a)[None].to(dev), A.N_FFT)
        Xy = A.spectrum(y)[:, :T]
        pt, py = Xt[:, :T].abs() ** 2 + 1e-8, Xy.abs() ** 2 + 1e-8
        lsd += torch.mean(torch.sqrt(torch.mean((10 * torch.log10(pt / py)) ** 2, dim=-1))).item()
        la += torch.mean((logamp - torch.log(Xt.abs() + 1e-5)) ** 2).item()
        ip += anti_wrap(phase - torch.angle(Xt)).mean().item()
    model.train()
    n = len(ids)
    return dict(mel_l1=mel_l1 / n, lsd_db=lsd / n, amp_mse=la / n, ip=ip / n)


def lr_at(step, args):
    warm = min(1.0, (step + 1) / args.warmup)
    return max(args.lr * warm * args.lr_decay ** step, args.lr_min * warm)


CSV_FIELDS = ["wall_time", "train_h", "step", "audio_h", "lr", "train_loss", "mel_l1", "lsd_db", "amp_mse", "ip",
              "best"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    trainlib.add_run_args(ap, data=D.default_data_dir(), cache=D.DEFAULT_CACHE, ckpt_dir="/work/ckpt/vocoder",
                          eval_every=10, log_every=25, ema=True)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--frames", type=int, default=120, help="crop length in frames (5 ms), context included")
    ap.add_argument("--context", type=int, default=16, help="leading frames without loss")
    trainlib.add_lr_args(ap, lr=5e-4, lr_min=2e-5)
    ap.add_argument("--lr-decay", type=float, default=0.99998, help="per step (APNet: 0.999 per epoch)")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--clip", type=float, default=10.0)
    ap.add_argument("--w-ip", type=float, default=1.0,
                    help="weight of the instantaneous-phase loss within L_P (APNet: 1)")
    ap.add_argument("--dev-utts", type=int, default=24, help="dev utterances per evaluation")
    ap.add_argument("--init", default="",
                    help="new runs: start from this checkpoint's weights (its evaluated ones) or from an "
                         "exported .osw (models/vocoder-16k.osw: gamma 1, the same function); with "
                         "--model-cfg '{\"phase\": \"diff\"}' over an atan2 model, everything but the phase "
                         "heads is taken")
    ap.add_argument("--freeze-amp", action="store_true", help="train the phase predictor only")
    ap.add_argument("--freeze-phase", action="store_true",
                    help="train the amplitude predictor only (phase-difference models: L_A alone, the "
                         "phase predictor is not run); with --init and a deeper --model-cfg amp_blocks, "
                         "the added blocks start with layer scale 0, so the start computes what --init does")
    ap.add_argument("--adv-amp", type=float, default=0.0, metavar="W",
                    help="with --freeze-phase: train the amplitude against a spectrogram critic too "
                         "(AmpCritic), adversarial + feature-matching terms weighted W (0: off)")
    trainlib.add_gpu_args(ap)
    args = ap.parse_args()
    trainlib.resolve_lr_min(ap, args)
    trainlib.check_gpu_args(ap, args)
    if args.freeze_amp and args.freeze_phase:
        ap.error("--freeze-amp and --freeze-phase together leave nothing to train")
    if args.adv_amp < 0 or (args.adv_amp > 0 and not args.freeze_phase):
        ap.error("--adv-amp: a weight >= 0, with --freeze-phase (the critic sees the amplitude only)")

    dev = trainlib.device(args)
    os.makedirs(args.ckpt_dir, exist_ok=True)
    last_path = os.path.join(args.ckpt_dir, "last.pt")
    best_path = os.path.join(args.ckpt_dir, "best.pt")
    csv_path = os.path.join(args.ckpt_dir, "dev.csv")

    ck = trainlib.resume_checkpoint(args, last_path)
    init = None
    if ck is None and args.init.endswith(".osw"):
        import export as X
        try:
            init = X.init_from_osw(args.init)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            ap.error(f"--init {args.init}: {e}")
    elif ck is None and args.init:
        init = runinfo.load(args.init)
    if ck is not None:
        model_cfg = ck["model_cfg"]
    else:
        model_cfg = dict(init["model_cfg"]) if init is not None else {}
        model_cfg.update(json.loads(args.model_cfg))
        model_cfg = M.build(model_cfg).cfg
    torch.manual_seed(args.seed)
    model = M.build(model_cfg).to(dev)
    if init is not None:
        sd = {k: v for k, v in init["model"].items()
              if not (k.startswith("pha.heads.") and model.diff and not M.build(init["model_cfg"]).diff)}
        missing, unexpected = model.load_state_dict(sd, strict=False)
        n_amp = M.build(init["model_cfg"]).cfg["amp_blocks"]
        added = [k for k in missing if k.startswith("amp.blocks.") and int(k.split(".")[2]) >= n_amp]
        if unexpected or any(not k.startswith("pha.heads.") and k not in added for k in missing):
            raise SystemExit(f"--init {args.init}: does not fit (missing {missing}, unexpected {unexpected})")
        with torch.no_grad():  # added amplitude blocks: identity at the start
            for k in added:
                if k.endswith(".gamma"):
                    model.state_dict()[k].zero_()
        print(f"[train] initialised from {args.init} (step {init.get('step')}); new: {missing or 'none'}",
              flush=True)
    if args.freeze_amp:
        for p in model.amp.parameters():
            p.requires_grad_(False)
    if args.freeze_phase:
        for p in model.pha.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, betas=(0.8, 0.99),
                            weight_decay=0.01)
    corpus = D.Corpus(args.data, args.cache, pack=args.pack)
    crops = D.Crops(corpus, args.frames, seed=args.seed)
    dev_ids = corpus.split(dev=True)
    dev_ids = [dev_ids[k] for k in np.linspace(0, len(dev_ids) - 1, min(args.dev_utts, len(dev_ids))).astype(int)]
    step, audio_s, best, train_s = 0, 0.0, 1e9, 0.0
    history = []
    if ck is not None:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, audio_s, best, train_s = ck["step"], ck["audio_s"], ck["best"], ck["train_s"]
        crops.rng.bit_generator.state = ck["crop_rng"]
        torch.set_rng_state(ck["torch_rng"])
        history = ck.get("history", [])
        print(f"[train] resumed {last_path}: step {step}, {audio_s/3600:.2f} h audio, best {best:.4f}", flush=True)
    ema = trainlib.make_ema(model, args, ck)
    critic = opt_c = None
    if args.adv_amp > 0:
        critic = AmpCritic().to(dev)
        opt_c = torch.optim.AdamW(critic.parameters(), lr=args.lr, betas=(0.8, 0.99), weight_decay=0.01)
        if ck is not None and ck.get("critic") is not None:
            critic.load_state_dict(ck["critic"])
            opt_c.load_state_dict(ck["opt_critic"])
        print(f"[train] amplitude critic: {sum(p.numel() for p in critic.parameters())} parameters"
              f"{', resumed' if ck is not None and ck.get('critic') is not None else ', new'}", flush=True)
    net_eval = ema.model if ema is not None else model  # what evaluations score and best.pt keeps
    runs = runinfo.start(ck, step)
    trainlib.announce(dev, args, runs)
    print(f"[train] data: {crops.summary}; dev: {len(dev_ids)} utterances", flush=True)
    M.print_summary(model)

    stop = trainlib.stop_on_signals()

    def checkpoint(path, extra=None):
        obj = dict(model=model.state_dict(), opt=opt.state_dict(), step=step, audio_s=audio_s, best=best,
                   critic=critic.state_dict() if critic is not None else None,
                   opt_critic=opt_c.state_dict() if critic is not None else None,
                   train_s=train_s, crop_rng=crops.rng.bit_generator.state, torch_rng=torch.get_rng_state(),
                   model_cfg=model_cfg, ema=ema.state_dict() if ema is not None else None,
                   ema_decay=args.ema, args=vars(args), commit=runs[-1]["commit"], runs=runs, history=history,
                   command=" ".join(sys.argv), data_summary=crops.summary,
                   init_osw=(init or {}).get("init_osw") if ck is None else ck.get("init_osw"),
                   saved=time.strftime("%Y-%m-%d %H:%M:%S"))
        if extra:
            obj.update(extra)
        runinfo.atomic_save(obj, path)

    win = {"loss": 0.0, "n": 0}

    def run_eval():
        nonlocal best
        t0 = time.time()
        res = evaluate(net_eval, corpus, dev_ids, dev)
        improved = res["mel_l1"] < best
        if improved:
            best = res["mel_l1"]
        row = dict(wall_time=time.strftime("%Y-%m-%d %H:%M:%S"), train_h=round(train_s / 3600, 3), step=step,
                   audio_h=round(audio_s / 3600, 3), lr=f"{lr_at(step, args):.2e}",
                   train_loss=round(win["loss"] / win["n"], 4) if win["n"] else "", best=round(best, 4),
                   **{k: round(v, 4) for k, v in res.items()})
        trainlib.append_csv(csv_path, CSV_FIELDS, row)
        history.append(row)
        win.update(loss=0.0, n=0)
        print(f"[eval] step {step} ({time.time()-t0:.0f}s): " +
              " ".join(f"{k} {v:.4f}" for k, v in res.items()), flush=True)
        if improved:
            checkpoint(best_path, extra=dict(model=net_eval.state_dict(), metrics=res))
            print(f"[eval] new best mel L1 {best:.4f} -> {best_path}", flush=True)

    t_start = time.time()
    if dev == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    evals = args.eval_every > 0
    t_last_eval = t_last_ck = t_last_snap = time.time()
    if step == 0 and evals:
        run_eval()
        t_last_eval = time.time()
    model.train()
    acc = {"loss": 0.0, "n": 0, "t": 0.0, "parts": {}}
    seg_s = (args.frames - args.context - model_cfg["lookahead"]) * A.HOP / A.SR
    while not stop["flag"]:
        t0 = time.time()
        mel, wav = crops.batch(args.batch)
        mel = torch.from_numpy(mel).to(dev)
        wav = torch.from_numpy(wav).to(dev)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        if critic is not None:
            fake, real = amp_pair(model, mel, wav, args.context)
            for g in opt_c.param_groups:
                g["lr"] = lr_at(step, args)
            d_loss = critic_loss(critic, fake, real)
            opt_c.zero_grad(set_to_none=True)
            d_loss.backward()
            torch.nn.utils.clip_grad_norm_(critic.parameters(), args.clip)
            if torch.isfinite(d_loss):
                opt_c.step()
            loss, parts = adv_amp_losses(critic, fake, real, args.adv_amp)
            parts["D"] = d_loss.item()
        else:
            loss, parts = losses(model, mel, wav, args.context, args.w_ip, args.freeze_phase and model.diff)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        gn = torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], args.clip)
        if torch.isfinite(gn) and torch.isfinite(loss):
            opt.step()
            if ema is not None:
                ema.update(model, step)
        else:
            print(f"[train] step {step}: non-finite loss or gradient, skipped", flush=True)
        step += 1
        dt = time.time() - t0
        train_s += dt
        audio_s += args.batch * seg_s
        acc["loss"] += loss.item(); acc["n"] += 1; acc["t"] += dt
        for k, v in parts.items():
            acc["parts"][k] = acc["parts"].get(k, 0.0) + v
        win["loss"] += loss.item(); win["n"] += 1
        if step % args.log_every == 0:
            n = acc["n"]
            print(f"[train] step {step} loss {acc['loss']/n:.3f} | " +
                  " ".join(f"{k} {v/n:.4f}" for k, v in acc["parts"].items()) +
                  f" | lr {lr_at(step, args):.2e} gnorm {float(gn):.2f} {acc['t']/n:.2f} s/step", flush=True)
            acc = {"loss": 0.0, "n": 0, "t": 0.0, "parts": {}}
        now = time.time()
        done = trainlib.done(args, t_start, step)
        if evals and (now - t_last_eval >= args.eval_every * 60 or done):
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
