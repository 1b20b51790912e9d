"""Shared test helper: every figure of the course is labelled and titled."""


def assert_labelled(fig):
    """Every axes of ``fig`` has an x label, a y label and a title (the figure's suptitle counts).

    Colour bars need one label; image panels of a grid (no ticks) only need the figure's title.
    """
    suptitle = fig._suptitle.get_text().strip() if fig._suptitle is not None else ""
    assert fig.axes, "the figure has no axes"
    for i, ax in enumerate(fig.axes):
        if ax.get_label() == "<colorbar>":
            assert ax.get_ylabel() or ax.get_xlabel(), "colour bar without a label"
            continue
        if ax.images and not len(ax.get_xticks()) and not len(ax.get_yticks()):
            assert suptitle, "image grid without a title"
            continue
        assert ax.get_xlabel().strip() or fig.get_supxlabel().strip(), f"axes {i} has no x label"
        assert ax.get_ylabel().strip(), f"axes {i} has no y label"
        assert ax.get_title().strip() or suptitle, f"axes {i} has no title and the figure no suptitle"
