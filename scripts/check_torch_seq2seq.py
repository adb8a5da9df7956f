#!/usr/bin/env python3
"""Checks that a `recurrent translate` checkpoint loads into the PyTorch module documented in
docs/seq2seq.md with a strict load_state_dict, and that PyTorch's greedy translations equal the
hypotheses of `recurrent translate eval --dump FILE`.

    python3 scripts/check_torch_seq2seq.py MODEL.safetensors DUMP.tsv [max-length]

DUMP.tsv: source<TAB>reference<TAB>hypothesis lines (normalised words). Needs torch and
safetensors; not part of the test suite, which runs with the Swift toolchain alone.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class BahdanauAttention(nn.Module):
    def __init__(self, K, H):
        super().__init__()
        self.Wa, self.Ua, self.Va = nn.Linear(H, H), nn.Linear(K, H), nn.Linear(H, 1)

    def forward(self, query, keys, mask):
        scores = self.Va(torch.tanh(self.Wa(query)[:, None] + self.Ua(keys))).squeeze(2)
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights[:, None], keys).squeeze(1)


class LuongAttention(nn.Module):
    def __init__(self, K, H):
        super().__init__()
        self.Wa = nn.Linear(K, H, bias=False)

    def forward(self, query, keys, mask):
        scores = torch.bmm(self.Wa(keys), query[:, :, None]).squeeze(2)
        weights = F.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
        return torch.bmm(weights[:, None], keys).squeeze(1)


class Seq2Seq(nn.Module):
    def __init__(self, Vs, Vt, E, H, L, bi, attention, cell):
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        K = 2 * H if bi else H
        self.L, self.H, self.bi, self.kind, self.cell = L, H, bi, attention, cell
        self.encoder_embedding = nn.Embedding(Vs, E)
        self.encoder = rnn(E, H, L, batch_first=True, bidirectional=bi)
        self.decoder_embedding = nn.Embedding(Vt, E)
        self.decoder = rnn(E + (K if attention == "bahdanau" else 0), H, L, batch_first=True)
        if attention == "bahdanau":
            self.attention = BahdanauAttention(K, H)
        if attention == "luong":
            self.attention = LuongAttention(K, H)
            self.combine = nn.Linear(K + H, H)
        self.out = nn.Linear(H, Vt)

    def bridge(self, h):
        B = h.shape[1]
        return h.view(self.L, 2, B, self.H).sum(1) if self.bi else h

    @torch.no_grad()
    def greedy(self, src, max_length):  # src: one sentence's indices, <eos> appended
        enc, h = self.encoder(self.encoder_embedding(torch.tensor([src])))
        h = tuple(self.bridge(t) for t in h) if self.cell == "lstm" else self.bridge(h)
        mask = torch.ones(1, len(src), dtype=torch.bool)
        word, out = 2, []  # <sos>
        for _ in range(max_length):
            x = self.decoder_embedding(torch.tensor([word]))
            if self.kind == "bahdanau":
                top = (h[0] if self.cell == "lstm" else h)[-1]
                x = torch.cat((x, self.attention(top, enc, mask)), 1)
            y, h = self.decoder(x[:, None], h)
            y = y[:, 0]
            if self.kind == "luong":
                y = torch.tanh(self.combine(torch.cat((self.attention(y, enc, mask), y), 1)))
            logits = self.out(y)
            logits[:, [0, 2]] = float("-inf")  # never <pad> or <sos>, as translate's decoding
            word = int(logits.argmax(1))
            if word == 3:  # <eos>
                break
            out.append(word)
        return out


def main():
    path, dump = sys.argv[1], sys.argv[2]
    max_length = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    with safe_open(path, "pt") as f:
        meta = f.metadata()
    sv, tv = json.loads(meta["source_vocab"]), json.loads(meta["target_vocab"])
    model = Seq2Seq(len(sv), len(tv), int(meta["embedding_size"]), int(meta["hidden_size"]), int(meta["num_layers"]),
                    meta["bidirectional"] == "true", meta["attention"], meta["cell"])
    model.load_state_dict(load_file(path), strict=True)
    model.eval()
    index = {w: i for i, w in enumerate(sv)}
    rows = [line.rstrip("\n").split("\t") for line in open(dump, encoding="utf-8")]
    same = 0
    for source, _, hypothesis in rows:
        src = [index.get(w, 1) for w in source.split()] + [3]
        ours = " ".join(tv[i] for i in model.greedy(src, max_length))
        same += ours == hypothesis
        if ours != hypothesis:
            print(f"differs: {source!r}: torch {ours!r}, recurrent {hypothesis!r}")
    print(f"{same}/{len(rows)} greedy translations identical to PyTorch's")


if __name__ == "__main__":
    main()
