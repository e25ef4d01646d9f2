"""`make soak`: the whole system at half its measured capacity for a long run, sampled every
few seconds, to show that no process grows and no table or stream grows without bound.
Entry point: tests/soak/run_soak.py (a script, not a pytest suite)."""
