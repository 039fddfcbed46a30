"""Main job: sweep the hybrid's ε × k × query size (× query strategy × seed) with the baselines, on Ray Tune.

    python sweeps/eps_k_grid.py                                  # offline demo (sweeps/configs/demo.yaml)
    python sweeps/eps_k_grid.py --config sweeps/configs/agnews_distilbert.yaml --gpus-per-trial 0.25
    python sweeps/eps_k_grid.py --address auto --storage-path /shared/hal-results
    python sweeps/eps_k_grid.py --name demo --resume             # continue an interrupted sweep
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without install

from hal.core.errors import EXIT_USAGE, HalError, OneLineParser  # noqa: E402
from hal.core.requirements import require_torch  # noqa: E402

DEMO_CONFIG = Path(__file__).resolve().parent / "configs" / "demo.yaml"


def build_parser() -> argparse.ArgumentParser:
    from hal.sweep.flags import add_sweep_flags

    p = OneLineParser(prog="eps_k_grid.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEMO_CONFIG), help="sweep YAML (default: the offline demo)")
    p.add_argument("--epsilons", help="comma-separated ε values, e.g. 0.005,0.01,0.02")
    p.add_argument("--ks", help="comma-separated k values, e.g. 1,2,3")
    p.add_argument("--query-sizes", help="comma-separated query batch sizes, e.g. 16,32")
    p.add_argument("--query-strategies", help="comma-separated query strategies, e.g. entropy,badge,coreset "
                                              "(default: the config's run setting)")
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
             "query_strategy": (args.query_strategies, str, "--query-strategies"),
             "strategies": (args.strategies, str, "--strategies")}
    for key, (text, kind, flag) in lists.items():
        values = parse_list(text, kind, flag)
        if values is not None:
            setattr(spec, key, values)
    apply_sweep_flags(spec, args)
    return spec.validate()


def grid_manifest(spec, runs: list[dict], share_prefix: bool):
    """What this sweep is asked to run: every configuration by trial name, and the settings a
    ``--resume`` must repeat."""
    from hal.sweep.manifest import GRID, Manifest
    from hal.sweep.naming import trial_name

    settings = {"run": spec.run, "strategies": spec.strategies, "epsilon": spec.epsilon, "k": spec.k,
                "query_size": spec.query_size, "seed": spec.seed, "share_prefix": share_prefix}
    if spec.query_strategy is not None:  # absent from sweeps without the axis, as before it existed
        settings["query_strategy"] = spec.query_strategy
    return Manifest(GRID, spec.name, settings, [{"name": trial_name(r), "run": r} for r in runs])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        require_torch()
        # Everything that can be checked without Ray first (and before Ray's and torch's imports):
        # its log lines must not precede an error, and a bad flag is one line within a second.
        from hal.sweep.spec import experiment_path, trial_overrides

        spec = spec_from_args(args)
        runs = trial_overrides(spec)
        manifest = grid_manifest(spec, runs, args.share_prefix)
        from hal.sweep.session import close_sweep, open_sweep

        session = open_sweep(spec, manifest, args.resume)

        from hal.runs.lock import folder_lock
        from hal.sweep import ray_session
        from hal.sweep.tuners import build_tuner, grid_searcher, init_ray, prepare_shared

        if spec.address:
            ray_session.check_reachable(spec.address)
        shared = prepare_shared(runs)
        init_ray(spec.address)
        ray_session.check_resources(spec.cpus_per_trial, spec.gpus_per_trial)  # before any folder
        with folder_lock(experiment_path(spec), what="sweep", flag="--name") if "://" not in spec.storage_path \
                else contextlib.nullcontext():
            session.begin()
            searcher = grid_searcher(runs, args.share_prefix, session.storage)
            done = len(session.before.finished)
            print(f"sweep {spec.name}: {len(runs)} configurations"
                  + (", hybrids sharing retrain prefixes" if args.share_prefix else ", independent trials")
                  + f" ({spec.cpus_per_trial:g} CPU, {spec.gpus_per_trial:g} GPU per trial)"
                  + (f"; resumed, {done} finished before" if args.resume else ""), flush=True)
            build_tuner(spec, searcher, searcher.total, shared, len(runs), session.done_before).fit()
            return close_sweep(session, args.share_prefix, _device(runs))
    except HalError as exc:
        sys.stderr.write(f"eps_k_grid.py: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:  # a second Ctrl+C (the first lets Tune stop and the sweep close)
        from hal.sweep.session import resume_command

        sys.stderr.write(f"eps_k_grid.py: interrupted; finished configurations are kept, continue with: "
                         f"{resume_command()}\n")
        return 130


def _device(runs: list[dict]) -> str:
    from hal.core.config import make_config
    from hal.core.device import resolve_device

    return resolve_device(make_config(runs[0]).device).type


if __name__ == "__main__":
    sys.exit(main())
