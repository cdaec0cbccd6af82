"""Throughput and peak memory of lift3d inference: windowed passes vs one whole-sequence pass.

Published architecture (widths 3,3,3,3,3, 1024 channels, 17 -> 17 joints) with random weights, on
a random 2D sequence. Each (device, variant) runs in its own child process so that peak RSS
(``resource.getrusage``) belongs to that variant alone; on CUDA the peak of
``torch.cuda.max_memory_allocated`` is reported too. The parent prints a table and the largest
difference between each windowed result and the whole-sequence one.

    python bench/bench_lift3d.py                       # 10k frames, CPU (+ CUDA when present)
    python bench/bench_lift3d.py --frames 2000 --windows 512 4096 --devices cpu
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def child(args: argparse.Namespace) -> None:
    """Run one variant and print one JSON line."""
    import numpy as np
    import torch

    from posepipe.lift3d.infer import normalize_screen_coordinates, predict
    from posepipe.lift3d.model import TemporalCNN

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    widths = tuple(int(w) for w in args.widths.split(","))
    model = TemporalCNN(num_joints_in=17, num_joints_out=17, filter_widths=widths, channels=args.channels)
    model = model.eval().to(device)
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 1000, (args.frames, 17, 2)).astype(np.float32)
    norm = normalize_screen_coordinates(pixels, width=1920, height=1080)
    window = None if args.window <= 0 else args.window

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    predict(model, norm[: model.receptive_field], flip=args.flip, window=window, device=device)  # warm-up
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    rss_before = _rss_mib()
    t0 = time.perf_counter()
    out = predict(model, norm, flip=args.flip, window=window, device=device)
    sync()
    seconds = time.perf_counter() - t0
    result = {
        "device": str(device),
        "variant": "whole" if window is None else f"window {window}",
        "frames": args.frames,
        "seconds": seconds,
        "fps": args.frames / seconds,
        "rss_before_mib": rss_before,
        "peak_rss_mib": _rss_mib(),
        "cuda_peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None,
    }
    np.save(args.save, out)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000)
    parser.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--windows", nargs="+", type=int, default=[1024, 4096], help="output frames per pass")
    parser.add_argument("--no-whole", dest="whole", action="store_false", help="skip the whole-sequence pass")
    parser.add_argument("--no-flip", dest="flip", action="store_false")
    parser.add_argument("--widths", default="3,3,3,3,3")
    parser.add_argument("--channels", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    # Internal: run one variant.
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    parser.add_argument("--window", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--save", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    import numpy as np
    import torch

    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            variants = [*args.windows, *([0] if args.whole else [])]
            outputs = {}
            for window in variants:
                save = str(Path(tmp) / f"{device.replace(':', '_')}_{window}.npy")
                cmd = [sys.executable, __file__, "--child", "--device", device, "--window", str(window)]
                cmd += [
                    "--frames",
                    str(args.frames),
                    "--widths",
                    args.widths,
                    "--channels",
                    str(args.channels),
                ]
                cmd += ["--threads", str(args.threads), "--save", save] + ([] if args.flip else ["--no-flip"])
                done = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                outputs[window] = np.load(save)
                rows.append(row)
            if args.whole:
                for row, window in zip(rows[-len(variants) :], variants, strict=True):
                    row["max_abs_diff_vs_whole"] = float(np.abs(outputs[window] - outputs[0]).max())

    print(
        f"lift3d benchmark: {args.frames} frames, widths {args.widths}, {args.channels} channels, "
        f"flip={args.flip}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    header = f"{'device':<8}{'variant':<14}{'seconds':>9}{'frames/s':>10}{'RSS before MiB':>16}{'peak RSS MiB':>14}{'CUDA peak MiB':>15}{'max|diff|':>11}"
    print(header)
    print("-" * len(header))
    for r in rows:
        cuda = "-" if r["cuda_peak_mib"] is None else f"{r['cuda_peak_mib']:.0f}"
        diff = r.get("max_abs_diff_vs_whole")
        print(
            f"{r['device']:<8}{r['variant']:<14}{r['seconds']:>9.2f}{r['fps']:>10.0f}"
            f"{r['rss_before_mib']:>16.0f}{r['peak_rss_mib']:>14.0f}"
            f"{cuda:>15}{'-' if diff is None else f'{diff:.1e}':>11}"
        )


if __name__ == "__main__":
    main()
