"""The pipeline's steps, each a function over data, testable without a scheduler."""
