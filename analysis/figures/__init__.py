"""The report's figures, one module per PNG: each ``plot_*`` function writes its figure and returns
None, or writes nothing and returns a one-line reason when the data cannot support it."""

from analysis.figures.delta_f1 import plot_delta_f1
from analysis.figures.heatmaps import plot_heatmap_f1, plot_heatmap_saving
from analysis.figures.learning_curves import plot_learning_curves
from analysis.figures.pareto import panel_labels, plot_pareto
from analysis.figures.switch_timing import plot_switch_timing

__all__ = ["panel_labels", "plot_delta_f1", "plot_heatmap_f1", "plot_heatmap_saving", "plot_learning_curves",
           "plot_pareto", "plot_switch_timing"]
