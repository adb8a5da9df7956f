#!/usr/bin/env python3
"""Checks that a Recurrent char-LM checkpoint loads into the documented PyTorch module with a
strict load_state_dict, and that PyTorch's loss on a text equals `recurrent eval`'s.

    python3 scripts/check_torch_interop.py MODEL.safetensors TEXT.txt [recurrent-binary]

Needs torch and safetensors (pip install torch safetensors); not part of the test suite, which
runs with the Swift toolchain alone.
"""
import json, subprocess, sys
import torch, torch.nn as nn, torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class CharLM(nn.Module):
    def __init__(self, V, E, H, L, cell):
        super().__init__()
        self.embedding = nn.Embedding(V, E)
        if cell == "lstm":
            self.rnn = nn.LSTM(E, H, L, batch_first=True)
        elif cell == "gru":
            self.rnn = nn.GRU(E, H, L, batch_first=True)
        else:
            self.rnn = nn.RNN(E, H, L, batch_first=True, nonlinearity=cell.split("_")[1])
        self.head = nn.Linear(H, V)

    def forward(self, x):
        y, _ = self.rnn(self.embedding(x))
        return self.head(y)


def main():
    path, text_path = sys.argv[1], sys.argv[2]
    binary = sys.argv[3] if len(sys.argv) > 3 else ".build/release/recurrent"
    meta = safe_open(path, "pt").metadata()
    vocab = json.loads(meta["vocab"])
    model = CharLM(len(vocab), int(meta["embedding_size"]), int(meta["hidden_size"]), int(meta["num_layers"]), meta["cell"])
    model.load_state_dict(load_file(path))  # strict
    text = open(text_path, encoding="utf-8", newline="").read()   # \r stays a character, as in the tool
    lut = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([[lut[c] for c in text]])
    with torch.no_grad():
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, len(vocab)), ids[:, 1:].reshape(-1)).item()
    out = subprocess.run([binary, "eval", "--checkpoint", path, "--data", text_path, "--json"], capture_output=True, text=True, check=True)
    ours = json.loads(out.stdout)["loss"]
    print(f"{path}: strict load_state_dict ok; torch loss {loss:.6f}, recurrent eval {ours:.6f}, |diff| {abs(loss - ours):.2e}")
    sys.exit(0 if abs(loss - ours) < 1e-4 else 1)


if __name__ == "__main__":
    main()
