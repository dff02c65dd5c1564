"""probeboard's evaluator: submission -> scores."""
