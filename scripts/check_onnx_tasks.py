#!/usr/bin/env python3
"""Checks a `recurrent export` ONNX model of a classifier (an ensemble too), a tagger, a forecaster,
a conditional generator or a translator against the checkpoint it came from:
  - onnx.checker with full shape inference;
  - ONNX Runtime against the PyTorch modules written in TextClassifier.swift and Tagger.swift
    (strict load_state_dict, pack_padded_sequence), on the sentences of a text file (one per line,
    words split at whitespace) in padded batches of mixed lengths;
  - ONNX Runtime's labels (and probabilities) or tags against `recurrent classify predict` /
    `recurrent tag predict` on the same file;
  - a forecaster: the windows of `recurrent forecast predict` on the CSV file (its checkpoint's
    column), ONNX Runtime against the PyTorch module written in Forecaster.swift (scaling in
    numpy, float64) and against the forecasts `predict` wrote.

  - a conditional generator: ONNX Runtime's logits on the first 20 lines of every condition's file
    in the data folder against the PyTorch module written in ConditionalGenerator.swift, and greedy
    generation step by step (state carried) against `recurrent generate --greedy`.

  - a translator: teacher-forced logits on the pairs against the PyTorch module written in
    Seq2Seq.swift, and greedy decoding in ONNX Runtime (the whole prefix each call) of the same
    sentences against `recurrent translate`.

    python3 scripts/check_onnx_tasks.py MODEL.onnx MODEL.safetensors SENTENCES.txt|SERIES.csv|FOLDER|PAIRS.txt [recurrent-binary]

Needs torch, safetensors, onnx and onnxruntime; not part of the test suite, which runs with the
Swift toolchain alone.
"""
import json, os, re, subprocess, sys, tempfile
import numpy as np
import torch, torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from safetensors.torch import load_file
sys.path.insert(0, os.path.dirname(__file__))
from check_onnx import open_checked

UNK, WORD_CHARS = 1, 32   # <unk>; the characters of a word the tagger reads


def recurrent(cell, I, H, L, bidirectional):
    kw = dict(batch_first=True, bidirectional=bidirectional)
    if cell == "lstm":
        return nn.LSTM(I, H, L, **kw)
    if cell == "gru":
        return nn.GRU(I, H, L, **kw)
    return nn.RNN(I, H, L, nonlinearity=cell.split("_")[1], **kw)


def final_hidden(h):
    return h[0] if isinstance(h, tuple) else h


class Classifier(nn.Module):
    def __init__(self, V, E, H, L, C, cell, bidirectional, pooling):
        super().__init__()
        self.embedding = nn.Embedding(V, E, padding_idx=0)
        self.rnn = recurrent(cell, E, H, L, bidirectional)
        self.head = nn.Linear(2 * H if bidirectional else H, C)
        self.pooling = pooling

    def forward(self, x, lengths):
        packed = pack_padded_sequence(self.embedding(x), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.rnn(packed)
        h_n = final_hidden(h)
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        if self.pooling == "last":
            v = torch.cat((h_n[-2], h_n[-1]), 1) if self.rnn.bidirectional else h_n[-1]
        elif self.pooling == "mean":
            v = y.sum(1) / lengths[:, None]
        else:
            mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
            v = y.masked_fill(~mask[..., None], float("-inf")).max(1).values
        return self.head(v)


class Ensemble(nn.Module):
    def __init__(self, members):
        super().__init__()
        self.members = nn.ModuleList(members)


class Tagger(nn.Module):
    def __init__(self, Vw, Ew, Vc, Ec, Hc, H, L, C, cell):
        super().__init__()
        self.embedding = nn.Embedding(Vw, Ew, padding_idx=0)
        self.char_embedding = nn.Embedding(Vc, Ec, padding_idx=0)
        self.char_rnn = recurrent(cell, Ec, Hc, 1, True)
        self.rnn = recurrent(cell, Ew + 2 * Hc, H, L, True)
        self.head = nn.Linear(2 * H, C)

    def forward(self, words, lengths, chars, char_lengths):
        # chars (N, Tc): one row per real word, batch-major (every occurrence encoded).
        packed = pack_padded_sequence(self.char_embedding(chars), char_lengths, batch_first=True, enforce_sorted=False)
        h_n = final_hidden(self.char_rnn(packed)[1])
        cw = torch.cat((h_n[-2], h_n[-1]), 1)
        B, T = words.shape
        mask = torch.arange(T)[None, :] < lengths[:, None]
        x = torch.zeros(B, T, self.embedding.embedding_dim + cw.shape[1])
        x[mask] = torch.cat((self.embedding(words)[mask], cw), 1)
        out, _ = self.rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        y, _ = pad_packed_sequence(out, batch_first=True, total_length=T)
        return self.head(y)


def pad(rows, width=None):
    width = width or max(len(r) for r in rows)
    out = np.zeros((len(rows), width), np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def words_of(line):
    return [w for w in re.split(r"[ \t]+", line) if w]


def run_predict(binary, args, lines):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("".join(l + "\n" for l in lines))
    try:
        out = subprocess.run([binary] + args + [f.name], capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    return out.stdout.splitlines()


def check_classifier(session, meta, st_path, lines, binary):
    vocab = {t: i for i, t in enumerate(json.loads(meta["vocab"]))}
    labels = json.loads(meta["labels"])
    members = int(meta.get("ensemble", "1"))
    lower = meta["lowercase"] == "true"

    def encode(text):
        t = text.lower() if lower else text
        tokens = words_of(t) if meta["level"] == "word" else list(t.strip(" \t"))
        return [vocab.get(w, UNK) for w in tokens]

    lines = [l for l in lines if encode(l)]
    make = lambda: Classifier(len(vocab), int(meta["embedding_size"]), int(meta["hidden_size"]), int(meta["num_layers"]),
                              len(labels), meta["cell"], meta["bidirectional"] == "true", meta["pooling"])
    model = make() if members == 1 else Ensemble([make() for _ in range(members)])
    model.load_state_dict(load_file(st_path))  # strict
    model.eval()
    worst, probabilities = 0.0, []
    for lo in range(0, len(lines), 64):   # file order: mixed lengths in every batch
        ids = [encode(l) for l in lines[lo:lo + 64]]
        x, lengths = pad(ids), np.array([len(r) for r in ids], np.int64)
        out = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"tokens": x, "lengths": lengths})))
        with torch.no_grad():
            nets = [model] if members == 1 else list(model.members)
            zs = [m(torch.from_numpy(x), torch.from_numpy(lengths)) for m in nets]
            ref = torch.stack([z.softmax(1) for z in zs]).mean(0).numpy()
        if members == 1:
            worst = max(worst, float(np.abs(out["logits"] - zs[0].numpy()).max()))
        worst = max(worst, float(np.abs(out["probabilities"] - ref).max()))
        probabilities.append(out["probabilities"])
    p = np.concatenate(probabilities)
    predicted = run_predict(binary, ["classify", "predict", "--checkpoint", st_path], lines)
    same_label, worst_printed = 0, 0.0
    for row, line in zip(p, predicted):
        label, prob = line.rsplit("\t", 1)
        same_label += labels[int(row.argmax())] == label
        worst_printed = max(worst_printed, abs(float(prob) - float(row.max())))
    ok = worst < 1e-4 and same_label == len(lines) and worst_printed <= 5.1e-5
    compared = "logits, probabilities" if members == 1 else f"probabilities, {members} members"
    print(f"classifier {meta['cell']} L{meta['num_layers']} H{meta['hidden_size']} {'bi' if meta['bidirectional'] == 'true' else 'uni'} "
          f"{meta['pooling']} {meta['level']}: max |onnxruntime - torch| {worst:.2e} ({compared}; {len(lines)} sentences); "
          f"label as `classify predict` {same_label}/{len(lines)}, max |p - printed| {worst_printed:.1e}")
    return ok


def check_tagger(session, meta, st_path, lines, binary):
    words_vocab = {t: i for i, t in enumerate(json.loads(meta["vocab"]))}
    chars_vocab = {t: i for i, t in enumerate(json.loads(meta["char_vocab"]))}
    tags = json.loads(meta["labels"])
    lower = meta["lowercase"] == "true"
    sentences = [s for s in (words_of(l) for l in lines) if s]
    model = Tagger(len(words_vocab), int(meta["embedding_size"]), len(chars_vocab), int(meta["char_embedding_size"]),
                   int(meta["char_hidden_size"]), int(meta["hidden_size"]), int(meta["num_layers"]), len(tags), meta["cell"])
    model.load_state_dict(load_file(st_path))  # strict
    model.eval()
    worst, predicted_tags = 0.0, []
    for lo in range(0, len(sentences), 64):
        batch = sentences[lo:lo + 64]
        words = pad([[words_vocab.get(w.lower() if lower else w, UNK) for w in s] for s in batch])
        lengths = np.array([len(s) for s in batch], np.int64)
        spellings = [[[chars_vocab.get(c, UNK) for c in w[:WORD_CHARS]] for w in s] for s in batch]
        B, T = words.shape
        W = max(len(c) for s in spellings for c in s)
        chars = np.zeros((B, T, W), np.int64)
        char_lengths = np.zeros((B, T), np.int64)
        for b, s in enumerate(spellings):
            for t, c in enumerate(s):
                chars[b, t, :len(c)] = c
                char_lengths[b, t] = len(c)
        (logits,) = session.run(None, {"words": words, "lengths": lengths, "chars": chars, "char_lengths": char_lengths})
        flat = [c for s in spellings for c in s]
        with torch.no_grad():
            ref = model(torch.from_numpy(words), torch.from_numpy(lengths), torch.from_numpy(pad(flat)),
                        torch.tensor([len(c) for c in flat])).numpy()
        for b, s in enumerate(batch):
            worst = max(worst, float(np.abs(logits[b, :len(s)] - ref[b, :len(s)]).max()))
            predicted_tags.append([tags[int(i)] for i in logits[b, :len(s)].argmax(1)])
    printed = run_predict(binary, ["tag", "predict", "--checkpoint", st_path], [" ".join(s) for s in sentences])
    same, total = 0, 0
    for mine, line in zip(predicted_tags, printed):
        theirs = [w.rsplit("/", 1)[1] for w in line.split(" ")]
        same += sum(a == b for a, b in zip(mine, theirs))
        total += len(mine)
    ok = worst < 1e-4 and same == total
    print(f"tagger {meta['cell']} L{meta['num_layers']} H{meta['hidden_size']}: max |onnxruntime - torch| {worst:.2e} "
          f"(logits at {total} words, {len(sentences)} sentences); tags as `tag predict` {same}/{total}")
    return ok


class Forecaster(nn.Module):
    def __init__(self, Hd, L, horizon, mode, cell):
        super().__init__()
        self.rnn = recurrent(cell, 1, Hd, L, False)
        self.head = nn.Linear(Hd, horizon if mode == "direct" else 1)
        self.mode, self.horizon = mode, horizon

    def forecast(self, z):   # z (B, N) normalised windows → (B, H)
        y, state = self.rnn(z[..., None])
        if self.mode == "direct":
            return self.head(final_hidden(state)[-1])
        values = []
        for k in range(self.horizon):
            values.append(self.head(y[:, -1]))
            if k < self.horizon - 1:
                y, state = self.rnn(values[-1][:, None], state)
        return torch.cat(values, 1)


def check_forecaster(session, meta, st_path, data_path, binary):
    import csv
    with open(data_path, newline="", encoding="utf-8") as f:
        values = np.array([float(row[meta["column"]]) for row in csv.DictReader(f)])
    N, H = int(meta["window"]), int(meta["horizon"])
    model = Forecaster(int(meta["hidden_size"]), int(meta["num_layers"]), H, meta["mode"], meta["cell"])
    model.load_state_dict(load_file(st_path))  # strict
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "forecast.csv")
        subprocess.run([binary, "forecast", "predict", "--checkpoint", st_path, "--data", data_path, "--output", out],
                       capture_output=True, check=True)
        with open(out, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    origins = sorted({int(r["origin"]) for r in rows})
    windows = np.stack([values[t - N:t] for t in origins])
    (forecast,) = session.run(None, {"window": windows})
    if meta["normalize"] == "series":
        mean, scale = float(meta["series_mean"]), float(meta["series_std"])
    else:
        mean, std = windows.mean(1, keepdims=True), windows.std(1, keepdims=True)
        scale = np.where(std > 1e-8 * np.maximum(1, np.abs(mean)), std, 1.0)
    with torch.no_grad():
        z = torch.from_numpy(((windows - mean) / scale).astype(np.float32))
        ref = model.forecast(z).double().numpy() * scale + mean
    spread = values.std()
    worst_torch = float(np.abs(forecast - ref).max()) / spread
    row_of = {t: i for i, t in enumerate(origins)}
    worst_predict = max(abs(forecast[row_of[int(r["origin"])], int(r["index"]) - int(r["origin"])] - float(r["forecast"])) for r in rows) / spread
    ok = worst_torch < 1e-5 and worst_predict < 1e-5
    print(f"forecaster {meta['cell']} L{meta['num_layers']} H{meta['hidden_size']} {meta['mode']} {meta['normalize']} "
          f"(window {N}, horizon {H}): max |onnxruntime - torch| / the series' std {worst_torch:.1e} ({len(origins)} windows); "
          f"max |onnxruntime - `forecast predict`| / std {worst_predict:.1e} ({len(rows)} values)")
    return ok


class Generator(nn.Module):
    def __init__(self, V, C, E, Ec, H, L, cell):
        super().__init__()
        self.embedding = nn.Embedding(V, E, padding_idx=0)
        self.condition = nn.Embedding(C, Ec)
        self.rnn = recurrent(cell, E + Ec, H, L, False)
        self.head = nn.Linear(H, V)

    def forward(self, x, c):   # x (B, T) starting with <sos>, c (B,): equal lengths here
        e = torch.cat((self.embedding(x), self.condition(c)[:, None, :].expand(-1, x.size(1), -1)), 2)
        return self.head(self.rnn(e)[0])


def check_generator(session, meta, st_path, data_path, binary):
    vocab = json.loads(meta["vocab"])
    index = {t: i for i, t in enumerate(vocab)}
    conditions = json.loads(meta["conditions"])
    L, H = int(meta["num_layers"]), int(meta["hidden_size"])
    lstm = meta["cell"] == "lstm"
    model = Generator(len(vocab), len(conditions), int(meta["embedding_size"]), int(meta["condition_size"]), H, L, meta["cell"])
    model.load_state_dict(load_file(st_path))  # strict
    model.eval()

    def run(tokens, condition, state):   # tokens [T, B]
        feeds = {"tokens": tokens, "condition": condition, "h0": state[0]}
        if lstm: feeds["c0"] = state[1]
        out = session.run(None, feeds)
        return out[0], (out[1], out[2] if lstm else None)

    zeros = lambda B: (np.zeros((L, B, H), np.float32), np.zeros((L, B, H), np.float32) if lstm else None)
    # Logits of real texts: the first 20 lines of every condition's file, as one batch per condition
    # and length.
    worst, texts = 0.0, 0
    for k, name in enumerate(conditions):
        lines = [l.strip() for l in open(os.path.join(data_path, name + ".txt"), encoding="utf-8")][:20]
        by_length = {}
        for l in lines:
            if l: by_length.setdefault(len(l), []).append([2] + [index.get(ch, 1) for ch in l])
        for rows in by_length.values():
            x = np.array(rows, np.int64)
            c = np.full(len(rows), k, np.int64)
            logits, _ = run(x.T.copy(), c, zeros(len(rows)))
            with torch.no_grad():
                ref = model(torch.from_numpy(x), torch.from_numpy(c)).numpy().transpose(1, 0, 2)
            worst = max(worst, float(np.abs(logits - ref).max()))
            texts += len(rows)
    # Greedy generation, step by step with the state carried, against `recurrent generate --greedy`.
    same = 0
    for k, name in enumerate(conditions):
        state, token, out = zeros(1), 2, []
        while len(out) < 30:
            logits, state = run(np.array([[token]], np.int64), np.array([k], np.int64), state)
            z = logits[-1, 0].copy()
            z[:3] = -np.inf                                   # <pad>, <unk>, <sos> are never drawn
            token = int(z.argmax())
            if token == 3: break                              # <eos>
            out.append(vocab[token])
        theirs = subprocess.run([binary, "generate", "--checkpoint", st_path, "--condition", name, "--greedy", "--count", "1"],
                                capture_output=True, text=True, check=True).stdout.strip()
        same += "".join(out) == theirs
    ok = worst < 1e-4 and same == len(conditions)
    print(f"generator {meta['cell']} L{L} H{H}: max |onnxruntime - torch| {worst:.2e} (logits of {texts} texts); "
          f"greedy generation as `recurrent generate --greedy` for {same} of {len(conditions)} conditions")
    return ok


def normalize(text):
    """The PyTorch tutorial's normalizeString, as `recurrent translate` applies it."""
    import unicodedata
    t = "".join(c for c in unicodedata.normalize("NFD", text.lower()) if unicodedata.category(c) != "Mn")
    t = re.sub(r"([.!?])", r" \1", t)
    return re.sub(r"[^a-z.!?]+", " ", t).strip()


class Seq2Seq(nn.Module):
    """The module written in Seq2Seq.swift's doc comment (teacher forcing over tgt_in, eval mode)."""

    def __init__(self, Vs, Vt, E, H, L, bi, attention, cell):
        super().__init__()
        K = 2 * H if bi else H
        self.encoder_embedding = nn.Embedding(Vs, E)
        self.encoder = recurrent(cell, E, H, L, bi)
        self.decoder_embedding = nn.Embedding(Vt, E)
        self.decoder = recurrent(cell, E + (K if attention == "bahdanau" else 0), H, L, False)
        self.attention_kind, self.bi, self.L, self.H = attention, bi, L, H
        if attention == "bahdanau":
            self.attention = nn.Module()
            self.attention.Wa, self.attention.Ua, self.attention.Va = nn.Linear(H, H), nn.Linear(K, H), nn.Linear(H, 1)
        if attention == "luong":
            self.attention = nn.Module()
            self.attention.Wa = nn.Linear(K, H, bias=False)
            self.combine = nn.Linear(K + H, H)
        self.out = nn.Linear(H, Vt)

    def context(self, query, enc, keys, mask):   # query (B,H), enc (B,S,K), keys (B,S,H), mask (B,S)
        if self.attention_kind == "bahdanau":
            scores = self.attention.Va(torch.tanh(keys + self.attention.Wa(query)[:, None])).squeeze(2)
        else:
            scores = (keys * query[:, None]).sum(2)
        a = scores.masked_fill(~mask, float("-inf")).softmax(1)
        return (a[..., None] * enc).sum(1)

    def forward(self, src, src_lengths, tgt_in):
        packed = pack_padded_sequence(self.encoder_embedding(src), src_lengths, batch_first=True, enforce_sorted=False)
        enc, h = self.encoder(packed)
        enc, _ = pad_packed_sequence(enc, batch_first=True, total_length=src.shape[1])
        B = src.shape[0]
        if self.bi:
            h = tuple(t.view(self.L, 2, B, self.H).sum(1) for t in h) if isinstance(h, tuple) else h.view(self.L, 2, B, self.H).sum(1)
        mask = torch.arange(src.shape[1])[None, :] < src_lengths[:, None]
        keys = None
        if self.attention_kind == "bahdanau": keys = self.attention.Ua(enc)
        if self.attention_kind == "luong": keys = self.attention.Wa(enc)
        logits = []
        for t in range(tgt_in.shape[1]):
            x = self.decoder_embedding(tgt_in[:, t])
            if self.attention_kind == "bahdanau":
                x = torch.cat((x, self.context(final_hidden(h)[-1], enc, keys, mask)), 1)
            y, h = self.decoder(x[:, None], h)
            y = y[:, 0]
            if self.attention_kind == "luong":
                y = torch.tanh(self.combine(torch.cat((self.context(y, enc, keys, mask), y), 1)))
            logits.append(self.out(y))
        return torch.stack(logits, 1)


def check_translator(session, meta, st_path, pairs_path, binary):
    source_vocab = {t: i for i, t in enumerate(json.loads(meta["source_vocab"]))}
    target_vocab = json.loads(meta["target_vocab"])
    column = 1 if meta.get("reverse") == "true" else 0
    lines = [l.split("\t") for l in open(pairs_path, encoding="utf-8").read().splitlines() if "\t" in l]
    sentences, pairs = [], []
    for cols in lines[::max(1, len(lines) // 300)][:300]:   # 300 sentences spread over the file
        words, reference = normalize(cols[column]).split(), normalize(cols[1 - column]).split()
        if 0 < len(words) <= 12:
            sentences.append(words)
            pairs.append((words, reference))
    # Greedy decoding in ONNX Runtime: the whole prefix each call, <pad> and <sos> never chosen.
    ours = []
    for lo in range(0, len(sentences), 64):
        batch = sentences[lo:lo + 64]
        src = pad([[source_vocab.get(w, UNK) for w in s] + [3] for s in batch])
        lengths = np.array([len(s) + 1 for s in batch], np.int64)
        prefix = np.full((len(batch), 1), 2, np.int64)
        done = np.zeros(len(batch), bool)
        out = [[] for _ in batch]
        for _ in range(20):
            (logits,) = session.run(None, {"source": src, "source_lengths": lengths, "target_in": prefix})
            z = logits[:, -1].copy()
            z[:, [0, 2]] = -np.inf
            nxt = z.argmax(1)
            for b, w in enumerate(nxt):
                if done[b]: continue
                if w == 3: done[b] = True
                else: out[b].append(target_vocab[w])
            if done.all(): break
            prefix = np.concatenate([prefix, nxt[:, None]], 1)
        ours += [" ".join(o) for o in out]
    # Teacher-forced logits on the reference translations, against the PyTorch module.
    target_index = {t: i for i, t in enumerate(target_vocab)}
    model = Seq2Seq(len(source_vocab), len(target_vocab), int(meta["embedding_size"]), int(meta["hidden_size"]),
                    int(meta["num_layers"]), meta["bidirectional"] == "true", meta["attention"], meta["cell"])
    model.load_state_dict(load_file(st_path))  # strict
    model.eval()
    worst, compared = 0.0, 0
    for lo in range(0, len(pairs), 64):
        batch = pairs[lo:lo + 64]
        src = pad([[source_vocab.get(w, UNK) for w in s] + [3] for s, _ in batch])
        lengths = np.array([len(s) + 1 for s, _ in batch], np.int64)
        tgt = pad([[2] + [target_index.get(w, UNK) for w in t] for _, t in batch])
        (logits,) = session.run(None, {"source": src, "source_lengths": lengths, "target_in": tgt})
        with torch.no_grad():
            ref = model(torch.from_numpy(src), torch.from_numpy(lengths), torch.from_numpy(tgt)).numpy()
        for b, (_, t) in enumerate(batch):
            worst = max(worst, float(np.abs(logits[b, :len(t) + 1] - ref[b, :len(t) + 1]).max()))
            compared += len(t) + 1
    theirs = subprocess.run([binary, "translate", "--checkpoint", st_path], input="".join(" ".join(s) + "\n" for s in sentences),
                            capture_output=True, text=True, check=True).stdout.splitlines()
    same = sum(a == b.strip() for a, b in zip(ours, theirs))
    ok = same == len(sentences) and len(theirs) == len(sentences) and worst < 1e-4
    print(f"translator {meta['cell']} L{meta['num_layers']} H{meta['hidden_size']} {meta['attention']} "
          f"{'bidirectional' if meta['bidirectional'] == 'true' else 'unidirectional'}: max |onnxruntime - torch| {worst:.2e} "
          f"(teacher-forced logits at {compared} target positions); greedy translations as "
          f"`recurrent translate` for {same} of {len(sentences)} sentences")
    return ok


def main():
    onnx_path, st_path, text_path, binary, meta, session = open_checked(sys.argv)
    if meta["model"] == "forecaster":
        ok = check_forecaster(session, meta, st_path, text_path, binary)
    elif meta["model"] == "conditional-generator":
        ok = check_generator(session, meta, st_path, text_path, binary)
    elif meta["model"] == "seq2seq":
        ok = check_translator(session, meta, st_path, text_path, binary)
    else:
        lines = open(text_path, encoding="utf-8").read().splitlines()
        check = {"text-classifier": check_classifier, "tagger": check_tagger}[meta["model"]]
        ok = check(session, meta, st_path, lines, binary)
    print(f"{onnx_path}: onnx.checker ok; {'pass' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
