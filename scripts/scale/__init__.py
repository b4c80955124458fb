"""The parts of scripts/bench_scale.py (`make bench-scale`): memory, runner, machine, estimates, units, page."""
