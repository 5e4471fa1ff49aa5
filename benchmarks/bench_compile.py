"""asv benchmarks: compile and start-up time, measured apart from steady state.

Each runs a fresh Python process, so nothing compiled in this one counts.
"""

import tempfile

from fastnn.bench import harness


class Startup:
    timeout = 900
    number = 1
    repeat = 1
    warmup_time = 0

    def track_first_deep_convnet_step_cold_cache(self):
        """Seconds from import to the first deep_convnet step with an empty kernel cache."""
        with tempfile.TemporaryDirectory() as cache:
            return harness.time_to_first_step(cache)

    track_first_deep_convnet_step_cold_cache.unit = "seconds"

    def track_first_deep_convnet_step_warm_cache(self):
        """The same with the kernel cache already filled by a previous process."""
        with tempfile.TemporaryDirectory() as cache:
            harness.time_to_first_step(cache)
            return harness.time_to_first_step(cache)

    track_first_deep_convnet_step_warm_cache.unit = "seconds"


class ColdStart:
    """Import -> first training step (batch 100, Adam) of each network on an empty kernel
    cache: wall seconds, and CPU seconds of the process and its compiling workers."""

    params = list(harness.STARTUP_NETWORKS)
    param_names = ["network"]
    timeout = 900
    number = 1
    repeat = 1
    warmup_time = 0

    def track_first_step_cold_cache(self, network):
        with tempfile.TemporaryDirectory() as cache:
            return harness.first_step_times(cache, network)["wall_s"]

    track_first_step_cold_cache.unit = "seconds"

    def track_first_step_cold_cache_cpu(self, network):
        with tempfile.TemporaryDirectory() as cache:
            return harness.first_step_times(cache, network)["cpu_s"]

    track_first_step_cold_cache_cpu.unit = "seconds"

    def track_cold_process_to_exit(self, network):
        """The same process to its exit, which after a tiered start waits for the parallel
        builds still compiling in a worker (fastnn._precompile)."""
        with tempfile.TemporaryDirectory() as cache:
            return harness.first_step_times(cache, network)["process_s"]

    track_cold_process_to_exit.unit = "seconds"
