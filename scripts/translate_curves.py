#!/usr/bin/env python3
"""Draws validation BLEU and loss against training steps from `translate train --log` CSV files.

Usage: translate_curves.py OUT.svg LABEL=FILE.csv [LABEL=FILE.csv ...]
Standard library only; writes one SVG with two panels (validation loss, validation BLEU).
"""
import csv
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e"]


def read(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def panel(x0, y0, w, h, series, key, title, steps_max):
    values = [r[key] for _, rows in series for r in rows]
    lo, hi = min(values), max(values)
    if key == "valid_bleu":
        lo = 0.0
    pad = (hi - lo) * 0.05 or 1.0
    lo, hi = lo - (0 if key == "valid_bleu" else pad), hi + pad
    sx = lambda s: x0 + w * s / steps_max
    sy = lambda v: y0 + h - h * (v - lo) / (hi - lo)
    out = [f'<rect x="{x0}" y="{y0}" width="{w}" height="{h}" fill="none" stroke="#888"/>',
           f'<text x="{x0 + w / 2}" y="{y0 - 8}" text-anchor="middle" font-size="13">{title}</text>']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        out.append(f'<text x="{x0 - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" font-size="10">{v:.2f}</text>')
        out.append(f'<line x1="{x0}" x2="{x0 + w}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#eee"/>')
        s = steps_max * i / 4
        out.append(f'<text x="{sx(s):.1f}" y="{y0 + h + 14}" text-anchor="middle" font-size="10">{int(s)}</text>')
    out.append(f'<text x="{x0 + w / 2}" y="{y0 + h + 30}" text-anchor="middle" font-size="11">training step</text>')
    for i, (label, rows) in enumerate(series):
        pts = " ".join(f"{sx(r['step']):.1f},{sy(r[key]):.1f}" for r in rows)
        out.append(f'<polyline points="{pts}" fill="none" stroke="{COLORS[i % len(COLORS)]}" stroke-width="2"/>')
    return out


def main():
    out_path, specs = sys.argv[1], sys.argv[2:]
    series = [(s.split("=", 1)[0], read(s.split("=", 1)[1])) for s in specs]
    steps_max = max(r["step"] for _, rows in series for r in rows)
    W, H = 760, 330
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif">',
             '<rect width="100%" height="100%" fill="white"/>']
    parts += panel(60, 40, 290, 220, series, "valid_loss", "validation loss (teacher-forced, nats/word)", steps_max)
    parts += panel(440, 40, 290, 220, series, "valid_bleu", "validation BLEU (greedy)", steps_max)
    for i, (label, _) in enumerate(series):
        x = 60 + i * 170
        parts.append(f'<line x1="{x}" x2="{x + 24}" y1="{H - 14}" y2="{H - 14}" stroke="{COLORS[i % len(COLORS)]}" stroke-width="3"/>')
        parts.append(f'<text x="{x + 30}" y="{H - 10}" font-size="12">{label}</text>')
    parts.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
