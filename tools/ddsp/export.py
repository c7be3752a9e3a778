#!/usr/bin/python3
"""Export a DDSP checkpoint to an oscine weights file (.osw) via tools/osw.py.

    /usr/bin/python3 tools/ddsp/export.py --ckpt /work/ckpt/ddsp/violin/best.pt \
        --out models/ddsp-violin.osw

Tensors (float32, PyTorch layouts; src/models/ddsp.c reads them):
  f0_mlp.{i}.lin.weight [in_hidden, 1 or in_hidden], .bias [in_hidden]
  f0_mlp.{i}.norm.weight, .bias [in_hidden]                 LayerNorm, eps 1e-5
  ld_mlp.{i}.*                                              the same for loudness
  gru.weight_ih_l0 [3 gru, 2 in_hidden], gru.weight_hh_l0 [3 gru, gru],
  gru.bias_ih_l0, gru.bias_hh_l0 [3 gru]                    torch.nn.GRU, gates r, z, n
  out_mlp.{i}.lin.weight [out_hidden, gru + 2 in_hidden or out_hidden], .bias
  out_mlp.{i}.norm.weight, .bias [out_hidden]
  dense.weight [1 + n_harmonics + n_bands, out_hidden], dense.bias
  reverb.ir [reverb_length]                                 at sample_rate, ir[0] = 0
Per frame (model.py): f0_s = (12 log2(max(f0, 1e-3) / 440) + 69) / 127,
ld_s = ld / 80 + 1; a = f0_mlp(f0_s), b = ld_mlp(ld_s) (each block Linear,
LayerNorm, LeakyReLU 0.2); g = GRU([a, b]); y = dense(out_mlp([g, a, b]));
amp, dist = harmonic_controls(y[0], y[1:1+H], f0, sample_rate);
mags = exp_sigmoid(y[1+H:] + noise_bias).
"""
import argparse
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tools/ for osw.py, runinfo.py
import model as M  # noqa: E402
import osw  # noqa: E402
import runinfo  # noqa: E402

ARCH = "ddsp_rnn_fc_v1"


def export_tensors(model):
    t = {k: v.detach().cpu().float().numpy() for k, v in model.decoder.state_dict().items()}
    t["reverb.ir"] = model.ir().detach().cpu().float().numpy()
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in t.items()}


def model_meta(model, **extra):
    c = model.cfg
    meta = {
        "kind": "ddsp", "arch": ARCH,
        "sample_rate": str(M.MODEL_RATE), "frame_rate": str(M.FRAME_RATE),
        "n_harmonics": str(c["n_harmonics"]), "n_bands": str(c["n_bands"]),
        "in_hidden": str(c["in_hidden"]), "in_layers": str(c["in_layers"]),
        "gru": str(c["gru"]), "out_hidden": str(c["out_hidden"]),
        "out_layers": str(c["out_layers"]), "reverb_length": str(c["reverb_length"]),
        "leaky_slope": repr(M.LEAKY_SLOPE), "layernorm_eps": repr(M.LN_EPS),
        "noise_bias": repr(M.NOISE_BIAS), "f0_range": repr(M.F0_RANGE),
        "db_range": repr(M.DB_RANGE),
        "features": "oscine features --hop-ms 10 (YIN f0, A-weighted loudness dB at 16 kHz); "
                    "f0 of unvoiced frames (confidence < 0.5 or loudness < -60 dB) holds "
                    "the last voiced value",
        "params": str(model.n_params()),
        "macs_per_frame": str(model.macs_per_frame()),
    }
    meta.update({k: str(v) for k, v in extra.items()})
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--training-commit", default=None,
                    help="what trained it, for checkpoints from before runinfo (default: "
                         "from the checkpoint's runs)")
    a = ap.parse_args()
    ck = runinfo.load(a.ckpt)
    model = M.build(ck["model_cfg"])
    model.load_state_dict(ck["model"])
    model.eval()
    tensors = export_tensors(model)
    commit = runinfo.git_commit()
    metrics = ck.get("metrics", {})
    mtxt = ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float))
    meta = model_meta(
        model, instrument=ck["instrument"],
        loudness_ref_db=f"{ck['loudness_ref_db']:.2f}",
        f0_min_hz=f"{ck['f0_range'][0]:.1f}", f0_max_hz=f"{ck['f0_range'][1]:.1f}",
        training_data=ck["data_summary"] + " (../shared/data)",
        held_out=",".join(ck.get("held_out", [])),
        training_command=ck.get("command", ""), training_commit=a.training_commit or runinfo.describe(ck),
        export_commit=commit, training_step=ck["step"],
        metrics=mtxt or "none recorded")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    osw.write_osw(a.out, tensors, meta)
    back, meta2 = osw.read_osw(a.out)
    assert list(back) == list(tensors) and meta2 == meta
    print(f"wrote {a.out}: {len(tensors)} tensors, {sum(v.size for v in tensors.values())} values, "
          f"{os.path.getsize(a.out)} bytes; step {ck['step']}; {mtxt or 'no metrics'}")


if __name__ == "__main__":
    main()
