"""Tests of the composition: settings, CLI, production mode, logs, the worker, the benchmarks table."""
