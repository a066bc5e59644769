"""Code the LLM problem packages (bench_lora, bench_nas) share, so neither imports the other:
run-time helpers (device, dtype, paths) and WordNet parsing for their offline data sets.
Not a plugin: it registers nothing."""
