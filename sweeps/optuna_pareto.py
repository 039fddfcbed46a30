"""Multi-objective search: maximise final test macro-F1 and minimise total training cost of the
hybrid over ε (log-uniform), k (integer) and the query size, with Optuna's NSGA-II on Ray Tune.

    python sweeps/optuna_pareto.py --num-samples 24                    # offline demo data
    python sweeps/optuna_pareto.py --config sweeps/configs/agnews_distilbert.yaml \\
        --num-samples 60 --gpus-per-trial 0.25 --cost time
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hal.cli import OneLineParser  # noqa: E402
from hal.errors import EXIT_USAGE, HalError  # noqa: E402

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"
COSTS = {"samples": "total_train_samples", "time": "total_train_time_s"}


def build_parser() -> argparse.ArgumentParser:
    from hal.sweep import add_sweep_flags

    p = OneLineParser(prog="optuna_pareto.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG), help="sweep YAML: its 'run' settings are used")
    p.add_argument("--num-samples", type=int, default=24, help="trial budget")
    p.add_argument("--epsilon-range", default="0.001,0.05", help="log-uniform ε range: LOW,HIGH")
    p.add_argument("--k-range", default="1,4", help="integer k range: LOW,HIGH (inclusive)")
    p.add_argument("--query-sizes", help="choices of query size (default: the config's grid)")
    p.add_argument("--seed", type=int, default=0, help="run seed of every trial and the sampler's seed")
    p.add_argument("--cost", choices=sorted(COSTS), default="samples", help="cost objective to minimise")
    add_sweep_flags(p)
    return p


def _range(text: str, kind: type, flag: str) -> tuple:
    from hal.sweep import parse_list

    values = parse_list(text, kind, flag)
    if len(values) != 2 or not values[0] <= values[1]:
        raise HalError(f"{flag} {text!r}: give LOW,HIGH with LOW <= HIGH")
    return values[0], values[1]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import optuna
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch

        from hal import sweep

        spec = sweep.load_spec(args.config)
        spec.name = f"{spec.name}_optuna"
        sweep.apply_sweep_flags(spec, args)
        if args.query_sizes is not None:
            spec.query_size = sweep.parse_list(args.query_sizes, int, "--query-sizes")
        spec.strategies, spec.seed = ["hybrid"], [args.seed]
        spec.validate()
        if args.num_samples < 1:
            raise HalError(f"--num-samples must be >= 1, got {args.num_samples}")
        eps_low, eps_high = _range(args.epsilon_range, float, "--epsilon-range")
        k_low, k_high = _range(args.k_range, int, "--k-range")
        if eps_low <= 0 or k_low < 1:
            raise HalError("--epsilon-range must be > 0 (log-uniform) and --k-range must start at >= 1")
        # Validate the corners of the space and prepare the data once, before Ray starts trials.
        corners = [dict(spec.run, strategy="hybrid", epsilon=e, k=k, query_size=q, seed=args.seed)
                   for e in (eps_low, eps_high) for k in (k_low, k_high) for q in spec.query_size]
        spec.epsilon, spec.k = [eps_low], [k_low]
        runs = sweep.trial_overrides(spec)
        sweep.init_ray(spec.address)
        shared = sweep.prepare_shared(runs + corners)
        base = {key: value for key, value in runs[0].items() if key not in ("epsilon", "k", "query_size")}
        param_space = {"run": base, "epsilon": tune.loguniform(eps_low, eps_high),
                       "k": tune.randint(k_low, k_high + 1), "query_size": tune.choice(spec.query_size)}
        searcher = OptunaSearch(metric=["final_test_f1", COSTS[args.cost]], mode=["max", "min"],
                                sampler=optuna.samplers.NSGAIISampler(seed=args.seed))
        print(f"search {spec.name}: {args.num_samples} hybrid trials, NSGA-II over ε in "
              f"[{eps_low:g}, {eps_high:g}], k in [{k_low}, {k_high}], query size in {spec.query_size}", flush=True)
        results = sweep.build_search_tuner(spec, param_space, shared, searcher, args.num_samples).fit()
    except HalError as exc:
        sys.stderr.write(f"optuna_pareto.py: error: {exc}\n")
        return EXIT_USAGE
    print(sweep.closing_lines(spec, results, f" --cost {args.cost}"))
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
