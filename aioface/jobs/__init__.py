"""Library code the CLI calls: batches (a journal, resumable), benchmarks, the budget view."""
