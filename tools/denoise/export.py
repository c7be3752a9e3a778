"""Export a denoiser checkpoint to an oscine weights file (.osw) via tools/osw.py.

    /usr/bin/python3 tools/denoise/export.py --ckpt /work/ckpt/denoise/best.pt --out models/denoise.osw

Batch norm is folded into the complex conv before it (one scale per complex channel, so
both kernels of the pair scale alike). The folded model is checked against the
checkpoint's model in inference mode before the file is written.

Tensors (float32; C = complex channels, all complex kernels as a real/imag pair):
  enc{i}.wr/.wi  (Cout, Cin, KF, 2)  conv, frequency stride 2, padding KF//2 both edges;
                 time tap 0 -> frame t-1, tap 1 -> frame t
  enc{i}.br/.bi  (Cout)              complex bias (added to the real / imaginary output)
  dec{j}.wr/.wi  (Cin, Cout, KF, 2)  transposed conv: y[2*f - KF//2 + k] += W[:, :, k] x[f];
                 time tap 0 -> frame t, tap 1 -> frame t-1; Cin = [decoder path, skip]
  dec{j}.br/.bi  (Cout)
  {enc{i},dec{j}}.fsmn.* frequency FSMN, tfsmn{k}.* time FSMN (bottleneck):
     l1.wr/.wi (H, C), l1.br/.bi (H), l2.wr/.wi (C, H) (no bias), mem (C, K)
     y = x + p + memory(p), p = l2(relu(l1(x))) with relu on real and imaginary parts.
     freq: K = 2*order+1, tap k -> bin f + k - order (zeros outside), same kernel for re/im.
     time: K = order, tap k -> frame t - (order-1-k)*dilation (tap K-1 is the current frame).
     For tfsmn the feature index is c*Fb + f (c channel, f bin of the bottleneck).
Forward per frame: x = |X|^0.3 e^{j angle X}; encoders (conv, LeakyReLU(slope) on re and
im, freq FSMN after all but the last); time FSMNs; decoders (input = concat(path, skip of
the mirrored encoder), transposed conv, then LeakyReLU + freq FSMN except the last);
mask = tanh(re) + j tanh(im) of the last decoder; output spectrum = mask * X.
"""
import argparse
import copy
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tools/ for osw.py
import data as D  # noqa: E402
import init_osw as IO  # noqa: E402
import model as M  # noqa: E402
import stft as S  # noqa: E402
import osw  # noqa: E402
import runinfo  # noqa: E402

TRAIN_SETS = ("train/speech/ravdess (actors 01-18), train/speech/emodb (speakers 03,08-13), "
              "train/speech/ljspeech, train/speech/{librispeech,vctk,cmu_arctic} (all but the dev speakers), "
              "train/noise/{moodist_ambient,hu100_nonspeech,speechbrain_noise,esc50_samples,freesound_dfn}; "
              "dev (held out): ravdess_19/20, emodb_14, librispeech_367/533/1688/2033/2414/3005/3080/3331, "
              "vctk_p244/p273, household_timgrau, clearervoice_noise, dev/pairs")


def _np(t):
    return t.detach().cpu().double().numpy()


def fold_conv(conv, bn, transposed):
    """Complex conv (+ optional complex BN) -> dict wr, wi, br, bi (float32)."""
    wr, wi, br, bi = _np(conv.wr), _np(conv.wi), _np(conv.br), _np(conv.bi)
    if bn is None:
        return dict(wr=wr.astype(np.float32), wi=wi.astype(np.float32), br=br.astype(np.float32),
                    bi=bi.astype(np.float32))
    g, var, eps = _np(bn.gamma), _np(bn.var), bn.eps
    od = 1 if transposed else 0
    wr2, br2 = osw.fold_batchnorm(wr, br, g, _np(bn.beta_r), _np(bn.mean_r), var, eps=eps, out_dim=od)
    wi2, bi2 = osw.fold_batchnorm(wi, bi, g, _np(bn.beta_i), _np(bn.mean_i), var, eps=eps, out_dim=od)
    return dict(wr=wr2, wi=wi2, br=br2, bi=bi2)


def export_tensors(model):
    t = dict(model.export_params())
    for i, conv in enumerate(model.enc):
        t.update({f"enc{i}.{k}": v for k, v in fold_conv(conv, model.enc_bn[i], False).items()})
    for j, conv in enumerate(model.dec):
        bn = model.dec_bn[j] if j < len(model.dec_bn) else None
        t.update({f"dec{j}.{k}": v for k, v in fold_conv(conv, bn, True).items()})
    return {k: (v if isinstance(v, np.ndarray) else v.detach().cpu().float().numpy()).astype(np.float32)
            for k, v in t.items()}


def folded_model(model, tensors):
    """A copy of `model` with BN set to identity and the folded tensors loaded."""
    m = copy.deepcopy(model).eval()
    IO.load_into(m, tensors, m.cfg)
    return m


def check(model, tensors, tol=1e-4):
    torch.manual_seed(0)
    x = torch.randn(2, 16000) * 0.05
    model.eval()
    with torch.no_grad():
        X = S.stft(x)
        a = model.forward_mask(X)
        b = folded_model(model, tensors).forward_mask(X)
    err = (a - b).abs().max().item()
    if err > tol:
        raise SystemExit(f"export: folded model differs from checkpoint by {err:.3g}")
    return err


def makeup_db(model, n_utts, seed=0, data_dir=None):
    """The gain (dB) that gives clean speech back at its level: the mean over n_utts
    clean training utterances (first 4 s, random level -40..-15 dBFS) of
    -10 log10(energy out / energy in), and the spread of those values. A network
    trained this way passes clean speech about 2 dB low (tanh masks never reach 1;
    the compressed-magnitude loss and the scale-invariant SI-SNR do not pull them up)."""
    items = D.Corpus(data_dir or D.default_data_dir(), verbose=False).select("speech", dev=False)
    rng = np.random.default_rng(seed)
    vals = []
    for i in rng.choice(len(items), size=min(n_utts, len(items)), replace=False):
        x = D.to_float(items[i][3][:4 * S.SR]).astype(np.float64)
        x = x * (10 ** (rng.uniform(-40.0, -15.0) / 20) / D.rms(x))
        with torch.no_grad():
            y = model.enhance(torch.from_numpy(x).float()[None])[0].double().numpy()
        vals.append(-10 * np.log10(np.sum(y ** 2) / np.sum(x ** 2)))
    return float(np.mean(vals)), float(np.std(vals))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="/work/ckpt/denoise/best.pt")
    ap.add_argument("--out", default="models/denoise.osw")
    ap.add_argument("--makeup-utts", type=int, default=48,
                    help="clean training utterances that measure the make-up gain (makeup_db; 0: none)")
    ap.add_argument("--data", default=D.default_data_dir(), help="data folder (../shared/data)")
    runinfo.add_weights_arg(ap)
    a = ap.parse_args()
    ck = runinfo.load(a.ckpt)
    model = M.build(ck["model_cfg"])
    model.load_state_dict(runinfo.weights(ck, a.weights))
    model.eval()
    tensors = export_tensors(model)
    err = check(model, tensors)
    cfg = model.cfg
    commit = runinfo.git_commit()
    metrics = ck.get("metrics", {})
    mtxt = ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if isinstance(v, float))
    meta = {
        "kind": "denoise",
        "arch": "frcrn_causal_v1",
        "sample_rate": "16000", "n_fft": str(S.N_FFT), "win": str(S.WIN), "hop": str(S.HOP),
        "window": "sqrt_hann", "frame": "last 320 samples ending at the hop (no lookahead)",
        "channels": ",".join(str(c) for c in cfg["channels"]),
        "kernel_freq": str(cfg["kf"]), "kernel_time": "2", "stride_freq": "2",
        "fsmn_freq_order": str(cfg["fsmn_freq_order"]),
        "time_fsmn_order": str(cfg["time_order"]),
        "time_fsmn_dilations": ",".join(str(d) for d in cfg["time_dilations"]),
        "time_fsmn_hidden": str(cfg["time_hidden"]),
        "input_compress": str(cfg["compress"]), "leaky_slope": str(cfg["slope"]),
        "mask": "tanh(re) + j tanh(im), applied to the noisy spectrum",
        "training_data": TRAIN_SETS + " (../shared/data)",
        "training_command": ck.get("command", ""),
        "training_commit": runinfo.describe(ck),
        "export_commit": commit,
        "training_step": str(ck["step"]),
        "weights": runinfo.weights_note(ck, a.weights),
        "training_audio_hours": f"{ck['audio_s']/3600:.2f}",
        "metrics": mtxt or "none recorded",
        "params": str(model.n_params()),
        "macs_per_second": str(int(model.macs_per_second())),
    }
    init = runinfo.init_note(ck)
    if init:
        meta["initialised_from"] = init
    if a.makeup_utts > 0:
        g, sd = makeup_db(model, a.makeup_utts, data_dir=a.data)
        if not 0 <= g <= 12:
            raise SystemExit(f"export: make-up gain {g:.2f} dB out of [0, 12]: is this model sane?")
        meta["makeup_db"] = f"{g:.2f}"
        print(f"make-up gain {g:.2f} dB (clean speech, {a.makeup_utts} utterances, spread {sd:.2f} dB)")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    back, meta2 = osw.read_osw(a.out)
    assert list(back) == list(tensors) and meta2 == meta
    print(f"wrote {a.out}: {len(tensors)} tensors, {sum(v.size for v in tensors.values())} values "
          f"(folded check max err {err:.2e}); step {ck['step']}; {mtxt}")


if __name__ == "__main__":
    main()
