"""The IMACS comparison: stages, statistics, the runner and its result."""
