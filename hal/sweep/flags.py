"""The command-line flags every sweep script shares: what to run on, and where and how to run it."""

from __future__ import annotations

from typing import Any, Callable

from hal.core.errors import HalError, shown
from hal.sweep.spec import SweepSpec

RUN_FLAGS = ("rounds", "dataset", "data_dir", "learner", "model")
RESOURCE_FLAGS = ("cpus_per_trial", "gpus_per_trial", "max_concurrent", "address", "storage_path", "name",
                  "max_failures")


def add_sweep_flags(parser: Any) -> None:
    """Flags every sweep script shares: what to run on, and where and how to run it."""
    parser.add_argument("--rounds", type=int, help="rounds per run (round 0 included)")
    parser.add_argument("--dataset", help="synthetic, ag_news, imdb, jigsaw, banking77, or a directory of "
                                          "train/test files")
    parser.add_argument("--data-dir", help="directory holding <dataset>/train.parquet and test.parquet "
                                           "(or set HAL_DATA_DIR)")
    parser.add_argument("--learner", help="tfidf | embedding | transformer")
    parser.add_argument("--model", help="transformer checkpoint or encoder (hub name or local path)")
    parser.add_argument("--cpus-per-trial", type=float, help="CPUs reserved per trial")
    parser.add_argument("--gpus-per-trial", type=float, help="GPUs per trial; 0.25 packs four trials on a GPU")
    parser.add_argument("--max-concurrent", type=int, help="cap on trials running at once (0 = no cap)")
    parser.add_argument("--address", help="join a running Ray cluster (e.g. auto); default: start a local one")
    parser.add_argument("--storage-path",
                        help="results root: local dir, shared file system or URI (default results/); "
                             "--resume unpickles Tune's state from here, so keep it writable only by "
                             "you (a sweep folder group/others can write is refused)")
    parser.add_argument("--name", help="sweep name = folder under the storage path")
    parser.add_argument("--max-failures", type=int, help="retries per trial, each from its latest round checkpoint")


def apply_sweep_flags(spec: SweepSpec, args: Any) -> SweepSpec:
    """The flags of ``add_sweep_flags`` that were given, on top of ``spec``."""
    for key in RUN_FLAGS:
        if getattr(args, key) is not None:
            spec.run[key] = getattr(args, key)
    for key in RESOURCE_FLAGS:
        if getattr(args, key) is not None:
            setattr(spec, key, getattr(args, key))
    return spec


def parse_list(text: str | None, kind: Callable[[str], Any], flag: str) -> list[Any] | None:
    """``"0.01,0.02"`` -> ``[0.01, 0.02]``; a bad item is a ``HalError`` naming the flag. Repeats
    are kept (``LOW,HIGH`` may be equal); ``SweepSpec.validate`` refuses them in a grid."""
    if text is None:
        return None
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise HalError(f"{flag} is empty: give comma-separated values")
    values: list[Any] = []
    for item in items:
        try:
            value = kind(item)
        except ValueError:
            raise HalError(f"{flag} {shown(text)}: expected comma-separated {kind.__name__} values, "
                           f"got {shown(item)}") from None
        values.append(value)
    return values
