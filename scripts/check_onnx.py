#!/usr/bin/env python3
"""Checks a `recurrent export` ONNX model against the checkpoint it came from: onnx.checker
(with full shape inference), then ONNX Runtime's logits and final state against PyTorch's for
the same weights (the module of check_torch_interop.py, strict load_state_dict), on the text in
two chunks (the second starting from the first's hn/cn), and ONNX Runtime's loss on the whole text
against `recurrent eval`.

    python3 scripts/check_onnx.py MODEL.onnx MODEL.safetensors TEXT.txt [recurrent-binary]

Needs torch, safetensors, onnx and onnxruntime; not part of the test suite, which runs with the
Swift toolchain alone.
"""
import json, os, subprocess, sys
import numpy as np
import onnx, onnxruntime as ort
import torch, torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
sys.path.insert(0, os.path.dirname(__file__))
from check_torch_interop import CharLM


def open_checked(argv):
    """The command line (MODEL.onnx MODEL.safetensors TEXT [binary]); onnx.checker with full shape
    inference; the checkpoint's metadata, whose keys the ONNX model's metadata_props repeat; an ONNX
    Runtime session."""
    onnx_path, st_path, text_path = argv[1:4]
    binary = argv[4] if len(argv) > 4 else ".build/release/recurrent"
    model_proto = onnx.load(onnx_path)
    onnx.checker.check_model(model_proto, full_check=True)
    meta = safe_open(st_path, "pt").metadata()
    props = {p.key: p.value for p in model_proto.metadata_props}
    assert all(meta.get(k) == v for k, v in props.items() if k in meta) and props.get("vocab") == meta.get("vocab") \
        and props["model"] == meta.get("model", "char-lm"), "the ONNX metadata differs from the checkpoint's"
    session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    return onnx_path, st_path, text_path, binary, meta, session


def main():
    onnx_path, st_path, text_path, binary, meta, session = open_checked(sys.argv)
    vocab = json.loads(meta["vocab"])
    V, E, H, L, cell = len(vocab), int(meta["embedding_size"]), int(meta["hidden_size"]), int(meta["num_layers"]), meta["cell"]
    torch_model = CharLM(V, E, H, L, cell)
    torch_model.load_state_dict(load_file(st_path))
    torch_model.eval()
    lstm = cell == "lstm"
    text = open(text_path, encoding="utf-8").read()
    lut = {c: i for i, c in enumerate(vocab)}
    ids = np.array([lut[c] for c in text], dtype=np.int64)

    # Four streams of 50 steps, in two chunks of 25 (state carried).
    B, T = 4, 50
    batch = ids[: B * T].reshape(B, T)
    worst = 0.0
    h = np.zeros((L, B, H), np.float32); c = np.zeros((L, B, H), np.float32)
    th = torch.zeros(L, B, H); tc = torch.zeros(L, B, H)
    for lo in (0, T // 2):
        chunk = batch[:, lo:lo + T // 2]
        feeds = {"tokens": chunk.T.copy(), "h0": h}
        if lstm: feeds["c0"] = c
        out = session.run(None, feeds)
        logits, h = out[0], out[1]
        if lstm: c = out[2]
        with torch.no_grad():
            y, state = torch_model.rnn(torch_model.embedding(torch.from_numpy(chunk)), (th, tc) if lstm else th)
            ref = torch_model.head(y).numpy().transpose(1, 0, 2)
            th, tc = (state if lstm else (state, None))
        worst = max(worst, float(np.abs(logits - ref).max()), float(np.abs(h - th.numpy()).max()))
        if lstm: worst = max(worst, float(np.abs(c - tc.numpy()).max()))

    # The whole text as one stream, against `recurrent eval`.
    feeds = {"tokens": ids[:-1].reshape(-1, 1), "h0": np.zeros((L, 1, H), np.float32)}
    if lstm: feeds["c0"] = np.zeros((L, 1, H), np.float32)
    logits = torch.from_numpy(session.run(None, feeds)[0][:, 0, :])
    loss = F.cross_entropy(logits, torch.from_numpy(ids[1:])).item()
    out = subprocess.run([binary, "eval", "--checkpoint", st_path, "--data", text_path, "--json"], capture_output=True, text=True, check=True)
    ours = json.loads(out.stdout)["loss"]
    ok = worst < 1e-4 and abs(loss - ours) < 1e-4
    compared = "logits, hn, cn" if lstm else "logits, hn"
    print(f"{onnx_path}: onnx.checker ok; {cell} L{L} H{H}: max |onnxruntime - torch| {worst:.2e} ({compared}; "
          f"{B} streams, 2 chunks of {T // 2}); loss over {len(ids) - 1} characters: onnxruntime {loss:.6f}, "
          f"recurrent eval {ours:.6f}, |diff| {abs(loss - ours):.2e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
