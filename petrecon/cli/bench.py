"""Sub-command ``bench``: time the hot paths against the hardware floor."""

from __future__ import annotations

import argparse
import json


def _cmd_bench(args: argparse.Namespace) -> None:
    from petrecon.bench import run_bench

    report = run_bench(args.scanner, args.backend, quick=args.quick, repeats=args.repeats)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    print("\n".join(report.table_lines()))


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``bench``."""
    bench = commands.add_parser(
        "bench", help="time projection, AW-OSEM, list-mode histogramming and NEMA analysis against the hardware floor",
        epilog="examples:\n  petrecon bench --quick\n  petrecon bench --scanner mmr --backend cpu --json > bench.json\n"
               "  petrecon bench --scanner mmr --backend cuda\n\n"
               "ratio = time / floor; floor = max(bytes / bandwidth, flops / FLOP/s), both measured on this machine",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    bench.add_argument("--scanner", default="mmr", help="registry scanner (default mmr)")
    bench.add_argument("--backend", default="auto", choices=["auto", "cpu", "cuda"], help="device (default auto)")
    bench.add_argument("--quick", action="store_true",
                       help="reduced geometry (6 rings, 96 x 96 image) and AW-OSEM 4 x 8: seconds on a CPU")
    bench.add_argument("--repeats", type=int, default=None, help="timed runs per figure, best kept (default 1)")
    bench.add_argument("--json", action="store_true", help="print JSON")
    bench.set_defaults(run=_cmd_bench)
