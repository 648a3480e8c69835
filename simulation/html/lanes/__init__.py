"""One module per lane of the timeline. Each lane draws itself into the chart from ``y`` down and
returns the ``y`` below it."""
