"""Every figure of the course, one module per lesson (``figures.lesson04.sweep_heatmap``)."""
