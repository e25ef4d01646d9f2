"""`make chaos`: see run_chaos.py. A script, not a pytest suite (no test_*.py files here)."""
