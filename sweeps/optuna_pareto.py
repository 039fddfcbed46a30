"""Multi-objective search: maximise a *validation* score (final validation macro-F1, or the
validation AULC with --score aulc) and minimise total training cost of the hybrid over ε
(log-uniform), k (integer), the query size and (with --query-strategies) the query strategy,
with Optuna's NSGA-II on Ray Tune. The test F1 is
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
from hal.core.requirements import require_torch  # noqa: E402

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"
COSTS = {"samples": "total_train_samples", "time": "total_train_time_s"}
# Validation scores only. The trainable reports every round's val_f1, so the last result's val_f1
# is the final validation F1; aulc is the area under the validation-F1 curve.
SCORES = {"val_f1": "val_f1", "aulc": "aulc"}
# The run settings a sample draws (the query strategy only when the search has choices of it).
SAMPLED = ("epsilon", "k", "query_size", "query_strategy")


def build_parser() -> argparse.ArgumentParser:
    from hal.sweep.flags import add_sweep_flags

    p = OneLineParser(prog="optuna_pareto.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG), help="sweep YAML: its 'run' settings are used")
    p.add_argument("--num-samples", type=int, default=24, help="trial budget")
    p.add_argument("--epsilon-range", default="0.001,0.05", help="log-uniform ε range: LOW,HIGH")
    p.add_argument("--k-range", default="1,4", help="integer k range: LOW,HIGH (inclusive)")
    p.add_argument("--query-sizes", help="choices of query size (default: the config's grid)")
    p.add_argument("--query-strategies", help="choices of query strategy, e.g. entropy,badge,coreset (default: "
                                              "the config's grid, else its run setting, not searched)")
    p.add_argument("--seed", type=int, default=0, help="run seed of every trial and the sampler's seed")
    p.add_argument("--cost", choices=sorted(COSTS), default="samples", help="cost objective to minimise")
    p.add_argument("--score", choices=sorted(SCORES), default="val_f1",
                   help="validation score to maximise: final validation macro-F1 (default) or AULC")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted search --name with the same settings: finished samples "
                        "are kept (and told to the new study), unfinished ones continue, the rest are sampled")
    p.add_argument("--no-share-prefix", dest="share_prefix", action="store_false",
                   help="train every sample from round 0 (default: one retrain trajectory per query "
                        "size and strategy is shared, and each sample trains only its warm-started tail)")
    add_sweep_flags(p)
    return p


def _range(text: str, kind: type, flag: str) -> tuple:
    from hal.sweep.flags import parse_list

    values = parse_list(text, kind, flag)
    if len(values) != 2 or not values[0] <= values[1]:
        raise HalError(f"{flag} {text!r}: give LOW,HIGH with LOW <= HIGH")
    return values[0], values[1]


def search_space(eps: tuple[float, float], ks: tuple[int, int], query_sizes: list[int],
                 query_strategies: list[str] | None = None) -> dict:
    """The sampled settings as Optuna distributions (also used to tell a resumed study its
    earlier samples); the query strategy only when there are choices of it."""
    import optuna

    space = {"epsilon": optuna.distributions.FloatDistribution(eps[0], eps[1], log=True),
             "k": optuna.distributions.IntDistribution(ks[0], ks[1]),
             "query_size": optuna.distributions.CategoricalDistribution(list(query_sizes))}
    if query_strategies is not None:
        space["query_strategy"] = optuna.distributions.CategoricalDistribution(list(query_strategies))
    return space


def sampler_with_history(space: dict, metric: list[str], mode: list[str], seed: int, earlier: list[tuple]):
    """NSGA-II on Ray Tune, its study told the configurations an earlier run of the search
    finished (``earlier``: (sampled settings, objective values))."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "new study created ..." is not news
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name="hal",
                                directions=["maximize" if m == "max" else "minimize" for m in mode])
    for params, values in earlier:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=space, values=values))
    return OptunaSearch(space=space, metric=metric, mode=mode, storage=storage, study_name="hal",
                        sampler=picklable_nsga2(seed))


def picklable_nsga2(seed: int):
    """Optuna's NSGA-II sampler, picklable: since Optuna 5.1 the GA samplers hold a
    ``threading.Lock`` and define no ``__getstate__``, and Tune pickles the searcher when it builds
    the Tuner. The lock guards a cache only, so a copy gets a fresh one."""
    import threading

    import optuna

    class NSGAIISampler(optuna.samplers.NSGAIISampler):
        def __getstate__(self) -> dict:
            state = self.__dict__.copy()
            state.pop("_thread_lock", None)
            return state

        def __setstate__(self, state: dict) -> None:
            self.__dict__.update(state)
            self._thread_lock = threading.Lock()

    return NSGAIISampler(seed=seed)


def earlier_samples(session, metric: list[str]) -> tuple[list, list]:
    """What an earlier run of the search left: the finished samples as (settings, objectives) for
    the study, and the plans of every sample to propose again (finished ones report their records;
    unfinished ones continue from their checkpoints or start their tail)."""
    import json

    from hal.sweep.manifest import finished_run, sampled_folders
    from hal.sweep.plan import PLAN_FILE, RUN, TrialPlan

    storage = session.storage
    points, plans = [], []
    for name in sampled_folders(storage):
        plan = TrialPlan.from_config(json.loads(storage.read_text(storage.path(name, PLAN_FILE))))
        summary = finished_run(storage, name)
        if summary is not None:
            objectives = {"val_f1": summary.get("final_val_f1"), "aulc": summary.get("aulc"),
                          "total_train_samples": summary.get("total_train_samples"),
                          "total_train_time_s": summary.get("total_train_time_s")}
            points.append(({k: plan.run[k] for k in SAMPLED if k in plan.run},
                           [float(objectives[m]) for m in metric]))
        has_checkpoint = storage.exists(storage.path(name, "checkpoint.pt"))
        plans.append(plan.replace(role=RUN if summary is not None or has_checkpoint else plan.role))
    return points, plans


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        require_torch()
        import contextlib

        from hal.sweep.flags import apply_sweep_flags, parse_list
        from hal.sweep.manifest import SEARCH, Manifest
        from hal.sweep.spec import experiment_path, load_spec, trial_overrides

        spec = load_spec(args.config)
        spec.name = f"{spec.name}_optuna"
        apply_sweep_flags(spec, args)
        if args.query_sizes is not None:
            spec.query_size = parse_list(args.query_sizes, int, "--query-sizes")
        if args.query_strategies is not None:
            spec.query_strategy = parse_list(args.query_strategies, str, "--query-strategies")
        spec.strategies, spec.seed = ["hybrid"], [args.seed]
        spec.validate()
        if args.num_samples < 1:
            raise HalError(f"--num-samples must be >= 1, got {args.num_samples}")
        eps_low, eps_high = _range(args.epsilon_range, float, "--epsilon-range")
        k_low, k_high = _range(args.k_range, int, "--k-range")
        if eps_low <= 0 or k_low < 1:
            raise HalError("--epsilon-range must be > 0 (log-uniform) and --k-range must start at >= 1")
        # Validate the corners of the space and prepare the data once, before Ray starts trials.
        corners = [dict(spec.run, strategy="hybrid", epsilon=e, k=k, query_size=q, seed=args.seed,
                        **({} if qs is None else {"query_strategy": qs}))
                   for e in (eps_low, eps_high) for k in (k_low, k_high) for q in spec.query_size
                   for qs in spec.query_strategy or [None]]
        spec.epsilon, spec.k = [eps_low], [k_low]
        runs = trial_overrides(spec)
        settings = {"run": spec.run, "query_size": spec.query_size, "seed": args.seed,
                    **({} if spec.query_strategy is None else {"query_strategy": spec.query_strategy}),
                    "epsilon_range": [eps_low, eps_high], "k_range": [k_low, k_high], "cost": args.cost,
                    "score": args.score, "share_prefix": args.share_prefix}
        manifest = Manifest(SEARCH, spec.name, settings, num_samples=args.num_samples)
        from hal.sweep.session import close_sweep, open_sweep

        session = open_sweep(spec, manifest, args.resume)

        # Only now Ray, torch and friends: every check above answers within a second.
        from hal.runs.lock import folder_lock
        from hal.sweep.ray_session import check_reachable, check_resources
        from hal.sweep.tuners import build_tuner, drop_prefix_dir, init_ray, prepare_shared, sampled_searcher

        if spec.address:
            check_reachable(spec.address)
        shared = prepare_shared(runs + corners)  # data errors too before Ray prints anything
        init_ray(spec.address)
        check_resources(spec.cpus_per_trial, spec.gpus_per_trial)  # before any folder is made
        sampled = [key for key in SAMPLED if key != "query_strategy" or spec.query_strategy is not None]
        base = {key: value for key, value in runs[0].items() if key not in sampled}
        metric, mode = [SCORES[args.score], COSTS[args.cost]], ["max", "min"]
        space = search_space((eps_low, eps_high), (k_low, k_high), spec.query_size, spec.query_strategy)
        lock = folder_lock(experiment_path(spec), what="search", flag="--name") \
            if "://" not in spec.storage_path else contextlib.nullcontext()
        with lock:
            session.begin()
            points, done = earlier_samples(session, metric) if args.resume else ([], [])
            sampler = sampler_with_history(space, metric, mode, args.seed, points)
            searcher = sampled_searcher(spec, sampler, base, args.num_samples, args.share_prefix, session.storage,
                                        metric, mode, done=done)
            trials = args.num_samples + len(searcher.trajectories)
            print(f"search {spec.name}: {args.num_samples} hybrid configurations, NSGA-II maximising "
                  f"validation {args.score} (test F1 is only reported) and minimising {args.cost}, over ε in "
                  f"[{eps_low:g}, {eps_high:g}], k in [{k_low}, {k_high}], query size in {spec.query_size}"
                  + ("" if spec.query_strategy is None else f", query strategy in {spec.query_strategy}")
                  + (", sharing one retrain trajectory per query size and strategy" if args.share_prefix else "")
                  + (f"; resumed, {len(session.before.finished)} finished before" if args.resume else ""),
                  flush=True)
            build_tuner(spec, searcher, trials, shared, args.num_samples, session.done_before).fit()
            code = close_sweep(session, args.share_prefix, _device(base), f" --cost {args.cost} --score {args.score}")
            if code == 0:
                drop_prefix_dir(session.storage)  # forks of a finished search serve nothing
            return code
    except HalError as exc:
        sys.stderr.write(f"optuna_pareto.py: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # a second Ctrl+C (the first lets Tune stop and the sweep close)
        from hal.sweep.session import resume_command

        sys.stderr.write(f"optuna_pareto.py: interrupted; finished configurations are kept, continue with: "
                         f"{resume_command()}\n")
        return 130


def _device(run: dict) -> str:
    from hal.core.config import make_config
    from hal.core.device import resolve_device

    return resolve_device(make_config(run).device).type


if __name__ == "__main__":
    sys.exit(main())
