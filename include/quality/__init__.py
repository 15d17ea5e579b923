"""Quality gates (issue 5): Great Expectations suites, run directly."""
