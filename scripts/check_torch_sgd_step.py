#!/usr/bin/env python3
"""The one-step contract on cases other than the fixtures: builds a random CharLM in PyTorch,
saves it, takes one plain SGD step (lr 0.1) on a text with batch B and sequence T in char-rnn's
batching, and compares with `recurrent train --init-from ... --steps 1`.

    python3 scripts/check_torch_sgd_step.py [recurrent-binary]
"""
import json, os, subprocess, sys, tempfile
import torch, torch.nn.functional as F
from safetensors.torch import save_file, load_file
sys.path.insert(0, os.path.dirname(__file__))
from check_torch_interop import CharLM

binary = sys.argv[1] if len(sys.argv) > 1 else ".build/release/recurrent"
text = open(os.path.join(os.path.dirname(__file__), "..", "README.md"), encoding="utf-8").read()[:1500]
vocab = sorted(set(text))
ids = torch.tensor([vocab.index(c) for c in text])
worst = 0.0
# The last three have B·T above the vocabulary (63), so the embedding is folded into layer 0.
for cell, L, E, H, B, T in [("rnn_relu", 3, 5, 7, 2, 30), ("lstm", 1, 9, 13, 3, 17), ("gru", 3, 4, 6, 5, 11), ("rnn_tanh", 2, 8, 8, 1, 100),
                           ("lstm", 2, 16, 24, 8, 40), ("gru", 2, 12, 16, 6, 30)]:
    torch.manual_seed(0)
    m = CharLM(len(vocab), E, H, L, cell)
    d = tempfile.mkdtemp()
    meta = dict(model="char-lm", cell=cell, num_layers=str(L), hidden_size=str(H), embedding_size=str(E), vocab=json.dumps(vocab))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{d}/in.safetensors", metadata=meta)
    with open(f"{d}/text.txt", "w", encoding="utf-8") as f:
        f.write(text)
    n = (len(ids) - 1) // (B * T) * (B * T)
    x, y = ids[:n].view(B, -1)[:, :T], ids[1:n + 1].view(B, -1)[:, :T]
    loss = F.cross_entropy(m(x).reshape(-1, len(vocab)), y.reshape(-1))
    loss.backward()
    with torch.no_grad():
        for p in m.parameters():
            p -= 0.1 * p.grad
    subprocess.run([binary, "train", "--data", f"{d}/text.txt", "--init-from", f"{d}/in.safetensors", "--optimizer", "sgd", "--lr", "0.1",
                    "--batch-size", str(B), "--seq-len", str(T), "--val-fraction", "0", "--clip", "0", "--dropout", "0", "--steps", "1",
                    "--output", f"{d}/out.safetensors", "--quiet"], check=True, capture_output=True)
    ours = load_file(f"{d}/out.safetensors")
    diff = max((ours[k] - v).abs().max().item() for k, v in m.state_dict().items())
    worst = max(worst, diff)
    print(f"{cell} L{L} E{E} H{H} B{B} T{T}: max |recurrent - torch| after one SGD step = {diff:.2e}")
sys.exit(0 if worst < 1e-4 else 1)
