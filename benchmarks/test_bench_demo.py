"""Wall time of ``petrecon demo`` with its CPU default (reduced mMR sampling), stage by stage.

Run: ``python -m pytest benchmarks/test_bench_demo.py --benchmark-only``. One round;
results go into benchmarks/RESULTS.md (the product asks for under 2 minutes on two CPU cores).
"""

from petrecon.demo import reduced_mmr_sampling, run_demo


def test_demo_reduced_mmr_sampling(benchmark, tmp_path):
    results = []

    def demo():
        results.append(run_demo(tmp_path / f"run{len(results)}", sampling=reduced_mmr_sampling(), progress=False))

    benchmark.pedantic(demo, rounds=1, iterations=1)
    benchmark.extra_info["stages_s"] = {k: round(v, 1) for k, v in results[-1].timings_s.items()}
