#!/usr/bin/env python3
"""Steps per second of a `recurrent export` char-LM in ONNX Runtime at batch 1, one step per call
with the state carried (as ../shared/bench/torch_ref.py's `onnx` bench runs PyTorch's own export).

    python3 scripts/onnx_step_speed.py MODEL.onnx [threads]

Needs numpy, onnx and onnxruntime.
"""
import sys, time
import numpy as np, onnx, onnxruntime as ort

path = sys.argv[1]
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
meta = {p.key: p.value for p in onnx.load(path).metadata_props}
L, H = int(meta["num_layers"]), int(meta["hidden_size"])
lstm = meta["cell"] == "lstm"
so = ort.SessionOptions(); so.intra_op_num_threads = threads; so.inter_op_num_threads = 1
session = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
state = {"h0": np.zeros((L, 1, H), np.float32)}
if lstm: state["c0"] = np.zeros((L, 1, H), np.float32)
tokens = np.array([[5]], np.int64)


def steps(n):
    for _ in range(n):
        out = session.run(None, {"tokens": tokens, **state})
        state["h0"] = out[1]
        if lstm: state["c0"] = out[2]


steps(200)   # warm-up
for _ in range(3):
    t = time.perf_counter(); n = 2000
    steps(n)
    print(f"{path}: {meta['cell']} {L}x{H}, batch 1, one step per call, {threads} threads: {n / (time.perf_counter() - t):,.0f} steps/s")
