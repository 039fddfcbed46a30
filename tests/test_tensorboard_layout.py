"""What TensorBoard's pages open on, read back through TensorBoard's own hparams backend (the code
behind ``POST /data/plugin/hparams/experiment``, which the HParams page reads) and the tag
grouping of its Time Series tab, without a browser. ``docs/tensorboard_screenshots.sh`` checks the
same in a real one."""

from pathlib import Path

from hal.core.records import RoundRecord
from hal.runs import tensorboard as tb

# The HParams page ticks the first five hparams of the experiment it reads (tf-hparams-query-pane),
# and the Time Series tab opens the first two tag groups.
PAGE_TICKS = 5
OPEN_GROUPS = 2


def _write_run(log_dir: Path, config: dict) -> None:
    writer = tb.RoundWriter(log_dir, config)
    for r in range(2):
        writer.log(RoundRecord(r, 10 + r, r, "retrain", 0, 0.5, 0.5, None if r == 0 else 0.0,
                               None, 1.0, 1.0 + r, 10, 10 * (r + 1), 0.1, 0.1,
                               monitor_score=None if r == 0 else 0.9, signal=None if r == 0 else 0.1))
    writer.finish({"rounds": 2, "final_val_f1": 0.5, "aulc": 0.5, "total_train_samples": 20,
                   "total_train_time_s": 2.0, "final_test_f1": 0.4})


def _experiment(logdir: Path):
    """The Experiment proto the HParams page receives, as TensorBoard's server computes it."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import api_pb2, backend_context, get_experiment

    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(logdir))
    ctx = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), data_provider=provider))
    request = api_pb2.GetExperimentRequest(hparams_limit=1000)  # what the page sends
    return get_experiment.Handler(context.RequestContext(), ctx, "", request).run()


def test_hparams_page_ticks_strategy_epsilon_k_query_size_seed(tmp_path):
    base = {"dataset": "synthetic", "learner": "tfidf", "epsilon": 0.02, "k": 2, "monitor": "val",
            "query_strategy": "entropy", "finetune_epochs": 5, "replay_fraction": 1.0}
    _write_run(tmp_path / "retrain_q16_s3", {**base, "strategy": "retrain", "query_size": 16, "seed": 3})
    _write_run(tmp_path / "hybrid_q32_s4", {**base, "strategy": "hybrid", "query_size": 32, "seed": 4,
                                            "finetune_epochs": 1})

    experiment = _experiment(tmp_path)
    ticked = [h.name for h in experiment.hparam_infos][:PAGE_TICKS]
    assert set(ticked) == {"strategy", "epsilon", "k", "query_size", "seed"}
    assert len(experiment.hparam_infos) == len(tb.HPARAMS)  # the others are columns, unticked
    assert [m.name.tag for m in experiment.metric_infos][:PAGE_TICKS] == [t for t, _, _ in tb.FINAL_METRICS][:PAGE_TICKS]
    assert [m.name.tag for m in experiment.metric_infos][PAGE_TICKS:] == ["final/query_time_s"]


def _time_series_groups(tags):
    """Tag groups in the order TensorBoard's Time Series tab shows them: the part before the first
    '/', ordered by the tags' natural sort (plain character order when no digits lead)."""
    groups = []
    for tag in sorted(tags):
        group = tag.split("/", 1)[0]
        if group not in groups:
            groups.append(group)
    return groups


def test_time_series_opens_f1_and_cost(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    configs = {"retrain": {"strategy": "retrain"},
               "hybrid": {"strategy": "hybrid", "monitor": "val"},
               "agreement": {"strategy": "hybrid", "monitor": "agreement"}}
    for name, config in configs.items():
        _write_run(tmp_path / name, {**config, "query_size": 16, "seed": 0})
        tags = EventAccumulator(str(tmp_path / name)).Reload().Tags()["scalars"]
        assert _time_series_groups(tags)[:OPEN_GROUPS] == ["F1", "cost"], name
    assert {"switch/kappa", "switch/signal", "switch/switched"} <= set(tags)  # agreement's signal
