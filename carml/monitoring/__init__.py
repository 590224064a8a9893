"""Hardware readings taken while a shard runs (CPU, memory, NVIDIA GPUs), their summaries, energy and cost.

`sampler` and `summary` import only the standard library, psutil and (when installed) pynvml, so they can be
carried alone to a bare GPU machine (see bench/gpu/nvml_sampler_check.py); `shard` and `records` connect them
to jobs and the database.
"""
