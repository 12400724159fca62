"""Statistics for comparing two scenarios run with common random numbers."""
