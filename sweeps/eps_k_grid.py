"""Main job: sweep the hybrid's ε × k × query size (× seed) with the baselines, on Ray Tune.

    python sweeps/eps_k_grid.py                                  # offline demo (sweeps/configs/demo.yaml)
    python sweeps/eps_k_grid.py --config sweeps/configs/agnews_distilbert.yaml --gpus-per-trial 0.25
    python sweeps/eps_k_grid.py --address auto --storage-path /shared/hal-results
    python sweeps/eps_k_grid.py --name demo --resume             # continue an interrupted sweep
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hal.core.errors import EXIT_USAGE, HalError, OneLineParser  # noqa: E402

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"


def build_parser() -> argparse.ArgumentParser:
    from hal.sweep.flags import add_sweep_flags

    p = OneLineParser(prog="eps_k_grid.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG), help="sweep YAML (default: the offline demo)")
    p.add_argument("--epsilons", help="comma-separated ε values, e.g. 0.005,0.01,0.02")
    p.add_argument("--ks", help="comma-separated k values, e.g. 1,2,3")
    p.add_argument("--query-sizes", help="comma-separated query batch sizes, e.g. 16,32")
    p.add_argument("--seeds", help="comma-separated seeds, e.g. 42,43,44")
    p.add_argument("--strategies", help="comma-separated subset of hybrid,retrain,finetune,new_only")
    p.add_argument("--resume", action="store_true",
                   help="continue the interrupted sweep --name; this unpickles Tune's state from the "
                        "storage path, so a sweep folder group/others can write is refused")
    p.add_argument("--no-share-prefix", dest="share_prefix", action="store_false",
                   help="run every configuration as an independent trial (default: hybrids that "
                        "differ only in ε and k share one retrain trajectory and run only their tails)")
    add_sweep_flags(p)
    return p


def spec_from_args(args: argparse.Namespace):
    """The sweep spec: the YAML, then the flags on top."""
    from hal.sweep.flags import apply_sweep_flags, parse_list
    from hal.sweep.spec import load_spec

    spec = load_spec(args.config)
    lists = {"epsilon": (args.epsilons, float, "--epsilons"), "k": (args.ks, int, "--ks"),
             "query_size": (args.query_sizes, int, "--query-sizes"), "seed": (args.seeds, int, "--seeds"),
             "strategies": (args.strategies, str, "--strategies")}
    for key, (text, kind, flag) in lists.items():
        values = parse_list(text, kind, flag)
        if values is not None:
            setattr(spec, key, values)
    apply_sweep_flags(spec, args)
    return spec.validate()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from hal.sweep import ray_session
        from hal.sweep.ranking import closing_lines, configuration_results
        from hal.sweep.restore import check_resumable, killed_before_first_snapshot, restore_tuner
        from hal.sweep.spec import experiment_path, trial_overrides
        from hal.sweep.spend import spend_line, write_sweep_summary
        from hal.sweep.tuners import build_grid_tuner, build_shared_tuner, init_ray, prepare_shared

        # Everything that can be checked without Ray first: its log lines must not precede an error.
        spec = spec_from_args(args)
        runs = trial_overrides(spec)
        # A driver killed before Tune's first snapshot leaves a folder with nothing to restore:
        # --resume then starts the sweep again in it, and trials continue from their checkpoints.
        restore = args.resume and not killed_before_first_snapshot(spec)
        if restore:
            check_resumable(experiment_path(spec), spec.name, spec.storage_path)
        elif not args.resume and Path(experiment_path(spec)).exists() and "://" not in spec.storage_path:
            raise HalError(f"a sweep named {spec.name!r} already exists in {spec.storage_path}: "
                           "pass --resume to continue it or --name to start another")
        if spec.address:
            ray_session.check_reachable(spec.address)
        shared = prepare_shared(runs)
        init_ray(spec.address)
        ray_session.check_resources(spec.cpus_per_trial, spec.gpus_per_trial)  # before any folder
        if restore:
            tuner = restore_tuner(spec, shared)
        else:
            build = build_shared_tuner if args.share_prefix else build_grid_tuner
            print(f"sweep {spec.name}: {len(runs)} configurations"
                  + (", hybrids sharing retrain prefixes" if args.share_prefix else ", independent trials")
                  + f" ({spec.cpus_per_trial:g} CPU, {spec.gpus_per_trial:g} GPU per trial)", flush=True)
            tuner = build(spec, runs, shared)
        results = tuner.fit()
    except HalError as exc:
        sys.stderr.write(f"eps_k_grid.py: error: {exc}\n")
        return EXIT_USAGE
    shared_prefix = any(r.config.get("role") for r in results)
    spend = write_sweep_summary(spec, results, shared_prefix)
    print(closing_lines(spec, configuration_results(results)))
    print(spend_line(spend))
    return 0 if not results.errors else 1


if __name__ == "__main__":
    sys.exit(main())
