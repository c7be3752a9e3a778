"""Export a vocoder checkpoint to an oscine weights file (.osw) via tools/osw.py.

    /usr/bin/python3 tools/vocoder/export.py --ckpt /work/ckpt/vocoder/best.pt \
        --out models/vocoder-16k.osw
    # the synthesis settings of an exported file changed, its network as it is
    /usr/bin/python3 tools/vocoder/export.py --from-osw models/vocoder-16k.osw --rtisi 3,6 \
        --out models/vocoder-16k.osw

The layer-scale vector gamma of each ConvNeXt block is folded into the second
pointwise layer (weight and bias scaled per output channel); the folded network
is checked against the checkpoint's before the file is written.

Tensors (float32; P = "amp" or "pha"; C = dim, H = hidden, K = 161 bins):
  P.in_conv.weight (C, 80, k_in), .bias (C)   Conv1d over frames; tap j reads mel
      frame t - (k_in - 1 - lookahead) + j (zeros before the stream and, at its
      end, after it)
  P.in_norm.weight/.bias (C)                  LayerNorm over the C channels (eps ln_eps)
  P.blocks.{i}.dw.weight (C, 1, k_dw), .bias  depthwise Conv1d, causal: tap j reads
      frame t - (k_dw - 1) + j
  P.blocks.{i}.norm.weight/.bias (C)          LayerNorm
  P.blocks.{i}.pw1.weight (H, C), .bias (H)   Linear, then GELU (erf form)
  P.blocks.{i}.pw2.weight (C, H), .bias (C)   Linear (gamma folded in); x += result
  P.out_norm.weight/.bias (C)                 LayerNorm
  amp.heads.0.weight (K, C), .bias (K)        log-amplitude
  pha.heads.0 (R), pha.heads.1 (I)            phase = atan2(I, R)   (metadata phase "atan2")
  or pha.heads.0..3 (R_t, I_t, R_f, I_f)      phase "diff": the phase's differences
      dt = pi k / 2 + atan2(I_t, R_t), df = pi + atan2(I_f, R_f), integrated frame
      by frame (model.integrate_phase; src/dsp/phaseint.c) with tolerance phase_tol_db
Input x = (mel + in_offset) * in_scale; output spectrum exp(min(logamp,
logamp_max)) e^{j phase}, synthesised with the iSTFT of tools/vocoder/audio.py,
after RTISI-LA (audio.rtisi_la) when the metadata has rtisi_lookahead and
rtisi_iters.
"""
import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tools/ for osw.py
import audio as A  # noqa: E402
import model as M  # noqa: E402
import osw  # noqa: E402
import runinfo  # noqa: E402

TRAIN_SETS = ("train/speech/ravdess (actors 01-18), train/speech/emodb (speakers 03, 08-13), "
              "train/speech/ljspeech; dev (held out): ravdess_19, ravdess_20, emodb_14")
ARCH = "apnet_convnext_v1"


def export_tensors(model):
    """name -> float32 array, gamma folded into pw2."""
    sd = {k: v.detach().cpu().double() for k, v in model.state_dict().items()}
    out = {}
    for k, v in sd.items():
        if k.endswith(".gamma"):
            continue
        if ".pw2." in k:
            g = sd[k.split(".pw2.")[0] + ".gamma"]
            v = v * (g[:, None] if k.endswith("weight") else g)
        out[k] = v.float().numpy()
    return out


def meta_for(model, extra=None):
    c = model.cfg
    m = {
        "kind": "vocoder", "arch": ARCH, "sample_rate": str(A.SR),
        "n_fft": str(A.N_FFT), "win": str(A.WIN), "hop": str(A.HOP), "window": "hann",
        "n_mels": str(A.N_MELS), "mel_n_fft": str(A.MEL_NFFT), "fmin": "0", "fmax": "8000",
        "mel_scale": "slaney", "mel_norm": "slaney", "magnitude": "amplitude", "log": "ln",
        "log_floor": "1e-05",
        "dim": str(c["dim"]), "hidden": str(c["hidden"]), "amp_blocks": str(c["amp_blocks"]),
        "pha_blocks": str(c["pha_blocks"]), "kernel_in": str(c["k_in"]), "kernel_dw": str(c["k_dw"]),
        "lookahead": str(c["lookahead"]), "ln_eps": repr(float(c["ln_eps"])),
        "in_offset": repr(float(c["in_offset"])), "in_scale": repr(float(c["in_scale"])),
        "logamp_max": repr(float(c["logamp_max"])),
        "phase": c["phase"],
    }
    if c["phase"] == "diff":
        m["phase_tol_db"] = repr(float(c["tol_db"]))
    if c["rtisi_lookahead"] or c["rtisi_iters"]:
        m["rtisi_lookahead"] = str(c["rtisi_lookahead"])
        m["rtisi_iters"] = str(c["rtisi_iters"])
    if c.get("mel_fix_db", 0) > 0:
        m["mel_fix_db"] = repr(float(c["mel_fix_db"]))
    if extra:
        m.update(extra)
    return m


def cfg_from_meta(meta):
    """The model configuration an exported vocoder file was made from (meta_for's inverse)."""
    if meta.get("kind") != "vocoder" or meta.get("arch") != ARCH:
        raise ValueError(f"not a vocoder weights file (kind '{meta.get('kind')}', arch '{meta.get('arch')}')")
    try:
        c = dict(dim=int(meta["dim"]), hidden=int(meta["hidden"]), amp_blocks=int(meta["amp_blocks"]),
                 pha_blocks=int(meta["pha_blocks"]), k_in=int(meta["kernel_in"]), k_dw=int(meta["kernel_dw"]),
                 lookahead=int(meta["lookahead"]), ln_eps=float(meta["ln_eps"]),
                 in_offset=float(meta["in_offset"]), in_scale=float(meta["in_scale"]),
                 logamp_max=float(meta["logamp_max"]), phase=meta["phase"],
                 rtisi_lookahead=int(meta.get("rtisi_lookahead", 0)), rtisi_iters=int(meta.get("rtisi_iters", 0)),
                 mel_fix_db=float(meta.get("mel_fix_db", 0)))
        if c["phase"] == "diff":
            c["tol_db"] = float(meta["phase_tol_db"])
    except KeyError as e:
        raise ValueError(f"metadata key {e} missing") from None
    return c


def init_from_osw(path):
    """A training start (like a checkpoint's: model_cfg, model, step) from an exported
    file: its tensors with layer scale gamma = 1, which computes what the file does.
    Checkpoints stay on the machine that wrote them; the shipped file does not."""
    tensors, meta = osw.read_osw(path)
    model = load_folded(M.build(cfg_from_meta(meta)), tensors)
    return dict(model_cfg=model.cfg, model=model.state_dict(), step=meta.get("training_steps", "?"),
                init_osw=dict(path=path, sha256=runinfo.sha256_file(path), step=meta.get("training_steps", "?"),
                              command=meta.get("training_command", "")))


def load_folded(model, tensors):
    """A copy of model with the exported tensors (gamma = 1): the C network."""
    f = M.build(model.cfg)
    sd = f.state_dict()
    for k in sd:
        if k.endswith(".gamma"):
            sd[k] = torch.ones_like(sd[k])
        else:
            sd[k] = torch.from_numpy(tensors[k])
    f.load_state_dict(sd)
    return f.eval()


def settings(cfg, a):
    """cfg with the synthesis settings given on the command line."""
    if a.tol_db > 0:
        cfg["tol_db"] = a.tol_db
    if a.rtisi:
        cfg["rtisi_lookahead"], cfg["rtisi_iters"] = a.rtisi
    if a.mel_fix >= 0:
        cfg["mel_fix_db"] = a.mel_fix
    if cfg["lookahead"] + cfg.get("rtisi_lookahead", 0) > 8:  # VOC_MAX_LOOKAHEAD, 40 ms
        raise SystemExit(f"export: network look-ahead {cfg['lookahead']} + RTISI-LA look-ahead "
                         f"{cfg['rtisi_lookahead']} frames exceed 8 (40 ms)")
    return cfg


# metadata of an exported file that describe its training, not its configuration
TRAINING_KEYS = ("training_data", "training_command", "training_steps", "weights", "training_audio_h",
                 "commit", "initialised_from", "metrics")


def reexport(a):
    """--from-osw: the same network with other synthesis settings. The tensors must come
    back bit for bit (gamma = 1 folds to itself); the file keeps its training metadata and
    says where it came from."""
    try:
        tensors, meta = osw.read_osw(a.from_osw)
        cfg = settings(cfg_from_meta(meta), a)
    except (OSError, ValueError) as e:
        raise SystemExit(f"export: --from-osw {a.from_osw}: {e}")
    model = load_folded(M.build(cfg), tensors)
    out = export_tensors(model)
    if out.keys() != tensors.keys() or any(out[k].tobytes() != tensors[k].tobytes() for k in out):
        raise SystemExit(f"export: --from-osw {a.from_osw}: the network does not come back unchanged")
    extra = {k: meta[k] for k in TRAINING_KEYS if k in meta}
    extra["export_commit"] = runinfo.git_commit(short=True)
    extra["reexported_from"] = (f"{os.path.basename(a.from_osw)} (sha256 {runinfo.sha256_file(a.from_osw)[:16]}, "
                                f"export_commit {meta.get('export_commit', '?')}): same tensors, synthesis "
                                f"settings rtisi {cfg['rtisi_lookahead']},{cfg['rtisi_iters']}, "
                                f"mel_fix_db {cfg.get('mel_fix_db', 0)}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta_for(model, extra))
    n = sum(v.size for v in tensors.values())
    print(f"wrote {a.out}: {n} parameters (unchanged), synthesis RTISI-LA "
          f"{cfg['rtisi_lookahead']} x {cfg['rtisi_iters']}, mel fix {cfg.get('mel_fix_db', 0)} dB")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", default="/work/ckpt/vocoder/best.pt")
    ap.add_argument("--from-osw", metavar="FILE",
                    help="instead of a checkpoint, an exported file: its tensors unchanged (checked), "
                         "its training metadata kept, the synthesis settings (--rtisi, --mel-fix, "
                         "--tol-db) those given; for a file whose checkpoint is gone")
    ap.add_argument("--out", default="models/vocoder-16k.osw")
    ap.add_argument("--tol-db", type=float, default=0,
                    help="phase \"diff\" models: the integration's tolerance (dB below each frame's "
                         "maximum; default: the checkpoint's)")
    ap.add_argument("--rtisi", default="",
                    help="L,N: the synthesis refines the phase by RTISI-LA with L frames of look-ahead "
                         "and N passes (src/dsp/rtisi.h; default: the checkpoint's, else none)")
    ap.add_argument("--mel-fix", type=float, default=-1, metavar="DB",
                    help="pull each frame's predicted amplitude onto its input mel, by at most DB "
                         "(model.Vocoder.mel_fix; 0: off; default: the checkpoint's, else off)")
    runinfo.add_weights_arg(ap)
    a = ap.parse_args()
    if a.rtisi:
        try:
            rtisi = tuple(int(v) for v in a.rtisi.split(","))
        except ValueError:
            rtisi = ()
        if len(rtisi) != 2 or not (0 <= rtisi[0] <= 16 and 0 <= rtisi[1] <= 16):
            ap.error(f"--rtisi '{a.rtisi}': give LOOKAHEAD,PASSES, each 0..16")
        a.rtisi = rtisi
    if a.from_osw:
        return reexport(a)
    ck = runinfo.load(a.ckpt)
    cfg = settings(dict(ck["model_cfg"]), a)
    model = M.build(cfg)
    model.load_state_dict(runinfo.weights(ck, a.weights))
    model.eval()
    tensors = export_tensors(model)
    folded = load_folded(model, tensors)
    torch.manual_seed(0)
    mel = torch.randn(1, 200, A.N_MELS) * 2 - 6
    with torch.no_grad():
        la0, ph0, aux0 = model(mel)
        la1, ph1, aux1 = folded(mel)
    if model.diff:  # the integration may order near-ties differently: compare what it reads
        s0 = torch.cat([la0, torch.cos(aux0[0]), torch.sin(aux0[0]), torch.cos(aux0[1]), torch.sin(aux0[1])], -1)
        s1 = torch.cat([la1, torch.cos(aux1[0]), torch.sin(aux1[0]), torch.cos(aux1[1]), torch.sin(aux1[1])], -1)
    else:
        s0, s1 = model.spectrum(la0, ph0), folded.spectrum(la1, ph1)
    err = float((s0 - s1).abs().pow(2).sum() / s0.abs().pow(2).sum())
    if err > 1e-10:
        raise SystemExit(f"export: folded network differs from the checkpoint (NMSE {err:.3g})")
    metrics = ck.get("metrics", {})
    meta = meta_for(model, {
        "training_data": TRAIN_SETS,
        "training_command": ck.get("command", ""),
        "training_steps": str(ck.get("step", 0)),
        "weights": runinfo.weights_note(ck, a.weights),
        "training_audio_h": f"{ck.get('audio_s', 0) / 3600:.2f}",
        "commit": runinfo.describe(ck),
        **({"initialised_from": runinfo.init_note(ck)} if runinfo.init_note(ck) else {}),
        "export_commit": runinfo.git_commit(short=True),
        "metrics": ", ".join(f"dev {k} {v:.4f}" for k, v in metrics.items()),
    })
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    n = sum(v.size for v in tensors.values())
    print(f"wrote {a.out}: {n} parameters, step {ck.get('step')}, folded NMSE {err:.2e}")


if __name__ == "__main__":
    main()
