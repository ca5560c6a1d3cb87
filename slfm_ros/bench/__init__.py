"""Benchmarks: network latency per inference backend (``network_bench``) and the end-to-end
latency, CPU and memory of the real slfm_node over DDS (``pipeline_bench``)."""
