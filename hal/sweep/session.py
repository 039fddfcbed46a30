"""A sweep's life on its storage: starting it (manifest first) or resuming it, and closing it with
what exists compared against what was asked for.

``--resume`` rebuilds the sweep from its manifest and its trial folders instead of restoring
Tune's saved state: Tune keeps that state as pickles (``tuner.pkl``, searcher state), and
unpickling a file runs whatever code it names, so a sweep folder from someone else's archive, or
one whose pickles were damaged, could run code or silently restart the experiment with
configurations lost. Nothing HAL reads back is a pickle: the manifest and the records are JSON,
checkpoints load with ``weights_only``. Every configuration of the sweep becomes a trial again: a
finished one reports its records and trains nothing, an unfinished one continues from its own
checkpoint, shared prefixes are planned again for the hybrids that are not finished (their forks
and trajectory checkpoints are reused where they exist, and recomputed where they do not). Tune's
own result files of the sweep are rewritten whole, so they hold each round exactly once.
"""

from __future__ import annotations

import re
import shlex
import sys
from dataclasses import dataclass

from hal.core.errors import HalError
from hal.core.paths import writable_dir
from hal.sweep.manifest import Manifest, Outcome, differences, outcome, read_manifest, write_manifest
from hal.sweep.plan import PLAN_FILE
from hal.sweep.ranking import closing_lines
from hal.sweep.spec import SweepSpec, experiment_path
from hal.sweep.spend import spend_line, sweep_summary, write_sweep_summary
from hal.sweep.storage import Storage, open_storage

# Tune's files that describe one run of the experiment (rewritten by the next one). Trial folders
# also hold HAL's own files (records, summary, checkpoint, plan, TensorBoard events): kept.
TUNE_EXPERIMENT_FILES = re.compile(r"^(experiment_state-.*\.json|searcher-state-.*\.pkl|basic-variant-state-.*\.json"
                                   r"|tuner\.pkl|trainable\.pkl)$")
TUNE_TRIAL_FILES = re.compile(r"^(result\.json|progress\.csv|params\.json|params\.pkl|error\.txt|error\.pkl"
                              r"|checkpoint_\d+)$")


@dataclass
class SweepSession:
    """The sweep being run: its storage, its manifest, and what had finished before this run."""

    spec: SweepSpec
    storage: Storage
    manifest: Manifest
    before: Outcome
    resume: bool

    @property
    def done_before(self) -> frozenset[str]:
        return frozenset(self.before.finished)

    def begin(self) -> None:
        """Under the sweep's lock, right before the first trial: write the manifest of a new sweep,
        or clear Tune's state of the earlier runs of a resumed one."""
        try:
            if self.resume:
                clear_tune_state(self.storage)
            else:
                write_manifest(self.storage, self.manifest)
        except OSError as exc:
            raise HalError(f"cannot write to the sweep folder {experiment_path(self.spec)} "
                           f"({exc.strerror or type(exc).__name__}): make it writable by you") from None


def open_sweep(spec: SweepSpec, manifest: Manifest, resume: bool) -> SweepSession:
    """Check, before anything is written or Ray starts, that the sweep ``spec`` can start (its
    folder holds no sweep yet) or, with ``resume``, that ``manifest`` asks for what the sweep's
    own manifest holds. One-line ``HalError`` for every refusal. ``SweepSession.begin`` then writes."""
    where = experiment_path(spec)
    storage = open_storage(where)
    fix = "make it writable by you or choose another --storage-path"
    if not resume:
        if storage.local:
            writable_dir(storage.root.rsplit("/", 1)[0], "--storage-path", fix)
        if any(not name.startswith(".") for name in storage.list_dir(storage.root)):  # the lock file aside
            raise HalError(f"a sweep named {spec.name!r} already exists in {spec.storage_path}: pass --resume "
                           "to continue it or --name to start another")
        return SweepSession(spec, storage, manifest, Outcome({}, []), resume=False)
    old = read_manifest(storage, where)
    if storage.local:
        writable_dir(storage.root, "sweep folder", fix)
    changed = differences(old, manifest)
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise HalError(f"--resume: sweep {spec.name!r} was started with other settings ({shown}): resume it "
                       "with its own settings, or start a new sweep under another --name")
    return SweepSession(spec, storage, old, outcome(storage, old), resume=True)


def clear_tune_state(storage: Storage) -> None:
    """Delete Tune's files of earlier runs of the sweep (its state pickles, per-trial result
    files and checkpoints): the resumed run writes them anew, each round once."""
    for name in storage.list_dir(storage.root):
        path = storage.path(name)
        if TUNE_EXPERIMENT_FILES.match(name):
            storage.delete_file(path)
        elif storage.exists(f"{path}/{PLAN_FILE}"):
            for inner in storage.list_dir(path):
                if TUNE_TRIAL_FILES.match(inner):
                    storage.delete_file(f"{path}/{inner}")
                    storage.delete_dir(f"{path}/{inner}")


def close_sweep(session: SweepSession, shared_prefix: bool, device: str, report_flags: str = "") -> int:
    """Compare what exists with the manifest, write ``sweep_summary.json``, print the closing
    lines; 0 when every configuration finished, else 1 (the missing ones are named)."""
    result = outcome(session.storage, session.manifest)
    summary = sweep_summary(session.storage, session.manifest, result, shared_prefix, device)
    write_sweep_summary(session.storage, summary)
    print(closing_lines(session.spec, result, session.manifest, report_flags))
    print(spend_line(summary))
    if result.missing:
        print(f"to continue: {resume_command()}")
    return 0 if not result.missing else 1


def resume_command(argv: list[str] | None = None) -> str:
    """The command line that continues this sweep: the same one, with ``--resume``."""
    args = list(sys.argv if argv is None else argv)
    args = [a for a in args if a != "--resume"]
    return shlex.join(["python", *args, "--resume"])
