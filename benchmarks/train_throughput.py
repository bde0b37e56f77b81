"""Training throughput (images/s, forward + backward + AdamW step) of registered backbones on this machine.

    python benchmarks/train_throughput.py [--backbones resnet152,mobilenetv3_small] [--sizes 112,224] [--batch 32]
"""
from __future__ import annotations

import argparse
import os
import time


def main() -> int:
    import torch

    from edgepose.evaluation.bench import markdown_table
    from edgepose.train.models import BACKBONES, complexity, create

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default=",".join(sorted(BACKBONES)))
    ap.add_argument("--head", default="rot6d")
    ap.add_argument("--sizes", default="112")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    rows = []
    for name in args.backbones.split(","):
        for size in (int(s) for s in args.sizes.split(",")):
            model = create(name, args.head).to(memory_format=torch.channels_last).train()
            opt = torch.optim.AdamW(model.parameters(), 1e-4)
            x = torch.randn(args.batch, 3, size, size).contiguous(memory_format=torch.channels_last)
            target = torch.eye(3).expand(args.batch, 3, 3)
            deg = torch.zeros(args.batch, 3)
            times = []
            for step in range(args.steps + 1):
                t0 = time.perf_counter()
                loss = model.head.loss(model(x), target, deg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if step:  # the first step warms up
                    times.append(time.perf_counter() - t0)
            params, macs = complexity(model, size)
            rows.append({"backbone": name, "input": size, "params (M)": params / 1e6, "MACs (M)": macs / 1e6,
                         "train images/s": args.batch / (sum(times) / len(times))})
            print(rows[-1], flush=True)
    print(f"\n{os.cpu_count()} cores, batch {args.batch}\n")
    print(markdown_table(rows, list(rows[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
