#!/usr/bin/env python3
"""Reads a `recurrent train --tensorboard DIR` folder with TensorBoard's own loaders and prints
what TensorBoard sees: every scalar tag with its number of points and first/last values, and
every text tag with its last sample. Exits non-zero when nothing could be read.

    /work/venv/bin/python scripts/check_tensorboard.py DIR

Two readers, both from the `tensorboard` package: the low-level EventFileLoader (checks every
record's CRC; raises on a corrupt frame) and the EventAccumulator that the dashboards use.
"""
import glob
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
from tensorboard.util import tensor_util


def main(directory):
    files = sorted(glob.glob(os.path.join(directory, "events.out.tfevents.*")))
    if not files:
        print(f"error: no event files in {directory}")
        return 1
    for path in files:
        events = list(EventFileLoader(path).Load())
        if not events:
            print(f"error: {path}: no readable events (a corrupt record stops the reader)")
            return 1
        print(f"{os.path.basename(path)}: {len(events)} events, file_version {events[0].file_version!r}")
    acc = event_accumulator.EventAccumulator(directory, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    scalars = tags.get("scalars", [])
    for tag in sorted(scalars):
        points = acc.Scalars(tag)
        print(f"scalar {tag}: {len(points)} points, step {points[0].step} = {points[0].value:.4g} … step {points[-1].step} = {points[-1].value:.4g}")
    texts = [t for t in tags.get("tensors", []) if acc.SummaryMetadata(t).plugin_data.plugin_name == "text"]
    for tag in sorted(texts):
        items = acc.Tensors(tag)
        last = tensor_util.make_ndarray(items[-1].tensor_proto).item().decode("utf-8")
        print(f"text {tag} (plugin 'text'): {len(items)} entries; last at step {items[-1].step}: {last.strip()[:60]!r}")
    if not scalars:
        print("error: TensorBoard found no scalars")
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
