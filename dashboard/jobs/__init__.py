"""Jobs: bulk actions the worker runs, with progress, pause, cancel and a verdict."""
