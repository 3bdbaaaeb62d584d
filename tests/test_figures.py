"""The notebooks' figures: each drawn once, on axes of its own.

``a2lib.plots`` shows a figure once in a notebook and closes it (a figure returned by a cell's last
line used to be displayed twice); a figure never mixes bars and lines in one axes (notebook 4's final
figure once drew its line plot into the bar chart). The figure cells of notebook 4's results are run
here on made-up evaluations and their figures counted.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from a2lib import plots  # noqa: E402
from a2lib.data import CIFAR10_CLASSES, ImageSet  # noqa: E402
from a2lib.evaluate import Evaluation  # noqa: E402
from autograder.harness.cells import grade_id  # noqa: E402
from autograder.locations import SOURCE_NOTEBOOKS  # noqa: E402

CLASSES = list(CIFAR10_CLASSES)


def _confusion(seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 20, (10, 10)) + np.diag(rng.integers(20, 80, 10))
    return pd.DataFrame(counts, index=CLASSES, columns=CLASSES)


def _history(n: int = 3) -> pd.DataFrame:
    return pd.DataFrame({"epoch": range(1, n + 1), "train_loss": np.linspace(2, 1, n), "train_acc": np.linspace(.3, .6, n),
                         "val_loss": np.linspace(2.1, 1.2, n), "val_acc": np.linspace(.25, .55, n)})


def kinds_per_axes(fig) -> list[set[str]]:
    """What each axes of ``fig`` holds: 'bars', 'lines' (with data), 'image'."""
    out = []
    for ax in fig.axes:
        kinds = set()
        if any(p.get_height() > 0 for p in ax.patches if hasattr(p, "get_height")):
            kinds.add("bars")
        if any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).sum() > 1 for line in ax.lines):
            kinds.add("lines")
        if ax.images or ax.collections:
            kinds.add("image")
        out.append(kinds)
    return out


def one_kind_per_axes(fig) -> bool:
    return all(len(kinds) <= 1 for kinds in kinds_per_axes(fig))


FIGURES = {
    "learning_curves": lambda **kw: plots.learning_curves({"a": _history(), "b": _history()}, **kw),
    "per_class_bars": lambda **kw: plots.per_class_bars({"ce": pd.Series(np.linspace(0, 1, 10), index=CLASSES),
                                                         "focal": pd.Series(np.linspace(1, 0, 10), index=CLASSES)}, **kw),
    "confusion_heatmap": lambda **kw: plots.confusion_heatmap(_confusion(0), **kw),
    "sample_images": lambda **kw: plots.sample_images(
        ImageSet(torch.randint(0, 255, (40, 3, 32, 32), dtype=torch.uint8), torch.arange(40) % 10, CLASSES), 3, **kw),
    "class_counts": lambda **kw: plots.class_counts(pd.Series([5000, 50], index=["a", "b"]), **kw),
    "accuracy_against_counts": lambda **kw: plots.accuracy_against_counts(
        {"ce": pd.Series([0.9, 0.1], index=["a", "b"])}, pd.Series([5000, 50], index=["a", "b"]), **kw),
}


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_each_figure_is_one_figure_with_one_kind_of_plot_per_axes(name):
    plt.close("all")
    fig = FIGURES[name](show=False)
    assert plt.get_fignums() == [fig.number] and one_kind_per_axes(fig), kinds_per_axes(fig)
    plt.close("all")


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_in_a_notebook_a_figure_is_shown_once_and_closed(name, capsys):
    plt.close("all")
    assert FIGURES[name](show=True) is None  # nothing for the cell to display a second time
    assert plt.get_fignums() == []


def test_the_kinds_check_sees_a_line_drawn_into_a_bar_chart():
    fig = plots.per_class_bars({"ce": pd.Series(np.linspace(0, 1, 10), index=CLASSES)}, show=False)
    fig.axes[0].plot(range(10), np.linspace(0, 1, 10))
    assert not one_kind_per_axes(fig)
    plt.close("all")


def test_notebook_4s_result_figures_are_four_each_on_its_own_axes():
    nb = nbformat.read(SOURCE_NOTEBOOKS / "04_data_wrangling.ipynb", as_version=4)
    cell = next(c for c in nb.cells if grade_id(c) == "results_plots")
    runs = ["cross-entropy"] + [f"CB-Focal beta={b}" for b in (0.9, 0.99, 0.999, 0.9999)]
    evaluations = {name: Evaluation(_confusion(i)) for i, name in enumerate(runs)}
    per_class = pd.DataFrame({name: e.per_class for name, e in evaluations.items()})
    per_class.insert(0, "training images", [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50])
    plt.close("all")
    namespace = {"plots": plots, "evaluations": evaluations, "per_class": per_class, "BETA": 0.9999}
    exec(cell.source, namespace)  # noqa: S102 (the kit's own notebook); outside a notebook figures stay open
    figures = [plt.figure(n) for n in plt.get_fignums()]
    assert len(figures) == 4  # bars, accuracy against counts, two confusion matrices
    assert all(one_kind_per_axes(fig) for fig in figures), [kinds_per_axes(f) for f in figures]
    plt.close("all")
