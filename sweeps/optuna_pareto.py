"""Multi-objective search: maximise a *validation* score (final validation macro-F1, or the
validation AULC with --score aulc) and minimise total training cost of the hybrid over ε
(log-uniform), k (integer) and the query size, with Optuna's NSGA-II on Ray Tune. The test F1 is
never an objective: it is the outcome, reported for the configurations the search chose.

    python sweeps/optuna_pareto.py --num-samples 24                    # offline demo data
    python sweeps/optuna_pareto.py --config sweeps/configs/agnews_distilbert.yaml \\
        --num-samples 60 --gpus-per-trial 0.25 --cost time
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hal.core.errors import EXIT_USAGE, HalError, OneLineParser  # noqa: E402

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"
COSTS = {"samples": "total_train_samples", "time": "total_train_time_s"}
# Validation scores only. The trainable reports every round's val_f1, so the last result's val_f1
# is the final validation F1; aulc is the area under the validation-F1 curve.
SCORES = {"val_f1": "val_f1", "aulc": "aulc"}


def build_parser() -> argparse.ArgumentParser:
    from hal.sweep.flags import add_sweep_flags

    p = OneLineParser(prog="optuna_pareto.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG), help="sweep YAML: its 'run' settings are used")
    p.add_argument("--num-samples", type=int, default=24, help="trial budget")
    p.add_argument("--epsilon-range", default="0.001,0.05", help="log-uniform ε range: LOW,HIGH")
    p.add_argument("--k-range", default="1,4", help="integer k range: LOW,HIGH (inclusive)")
    p.add_argument("--query-sizes", help="choices of query size (default: the config's grid)")
    p.add_argument("--seed", type=int, default=0, help="run seed of every trial and the sampler's seed")
    p.add_argument("--cost", choices=sorted(COSTS), default="samples", help="cost objective to minimise")
    p.add_argument("--score", choices=sorted(SCORES), default="val_f1",
                   help="validation score to maximise: final validation macro-F1 (default) or AULC")
    p.add_argument("--no-share-prefix", dest="share_prefix", action="store_false",
                   help="train every sample from round 0 (default: one retrain trajectory per query "
                        "size is shared, and each sample trains only its warm-started tail)")
    add_sweep_flags(p)
    return p


def _range(text: str, kind: type, flag: str) -> tuple:
    from hal.sweep.flags import parse_list

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

        from hal.sweep.flags import apply_sweep_flags, parse_list
        from hal.sweep.ranking import closing_lines, configuration_results
        from hal.sweep.spec import load_spec, trial_overrides
        from hal.sweep.spend import spend_line, write_sweep_summary
        from hal.sweep.tuners import (
            build_search_tuner,
            drop_prefix_dir,
            init_ray,
            prepare_shared,
            sampled_prefix_searcher,
        )

        spec = load_spec(args.config)
        spec.name = f"{spec.name}_optuna"
        apply_sweep_flags(spec, args)
        if args.query_sizes is not None:
            spec.query_size = parse_list(args.query_sizes, int, "--query-sizes")
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
        runs = trial_overrides(spec)
        from hal.sweep.ray_session import check_reachable, check_resources

        if spec.address:
            check_reachable(spec.address)
        shared = prepare_shared(runs + corners)  # data errors too before Ray prints anything
        init_ray(spec.address)

        check_resources(spec.cpus_per_trial, spec.gpus_per_trial)  # before any folder is made
        base = {key: value for key, value in runs[0].items() if key not in ("epsilon", "k", "query_size")}
        space = {"epsilon": tune.loguniform(eps_low, eps_high), "k": tune.randint(k_low, k_high + 1),
                 "query_size": tune.choice(spec.query_size)}
        metric, mode = [SCORES[args.score], COSTS[args.cost]], ["max", "min"]
        searcher = OptunaSearch(space=space, metric=metric, mode=mode,
                                sampler=optuna.samplers.NSGAIISampler(seed=args.seed))
        trials = args.num_samples
        if args.share_prefix:
            # One retrain trajectory per query size first; each sample then trains only its tail.
            searcher = sampled_prefix_searcher(spec, searcher, base, metric, mode)
            trials += len(spec.query_size)
        print(f"search {spec.name}: {args.num_samples} hybrid trials, NSGA-II maximising validation "
              f"{args.score} (test F1 is only reported) and minimising {args.cost}, over ε in "
              f"[{eps_low:g}, {eps_high:g}], k in [{k_low}, {k_high}], query size in {spec.query_size}"
              + (", sharing one retrain trajectory per query size" if args.share_prefix else ""), flush=True)
        results = build_search_tuner(spec, {"run": base}, shared, searcher, trials).fit()
    except HalError as exc:
        sys.stderr.write(f"optuna_pareto.py: error: {exc}\n")
        return EXIT_USAGE
    shared_prefix = any(r.config.get("role") for r in results)
    spend = write_sweep_summary(spec, results, shared_prefix)
    if shared_prefix:
        drop_prefix_dir(spec)
    print(closing_lines(spec, configuration_results(results), f" --cost {args.cost} --score {args.score}"))
    print(spend_line(spend))
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
