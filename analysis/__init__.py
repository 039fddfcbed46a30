"""Analysis of HAL results: load a sweep (or a single run) into tidy tables, aggregate over seeds,
find the cost/score Pareto front, draw the plots and write the report.

``python -m analysis.report <sweep_dir>`` is the one command; the modules are usable on their own:
``load`` (result files -> DataFrames), ``aggregate`` (seed means, savings vs retrain),
``pareto`` (the front), ``figures`` (the PNGs, one module each). Nothing here imports Ray.
"""
