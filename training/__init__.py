"""Training entry point, data pipelines, recipes and callbacks (see the training issue)."""
