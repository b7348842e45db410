"""mothtui's headless core: simulator, datasets, train-and-prune engine, run store,
selection, export, analysis, benchmarks and the command line.

Never imports textual (the UI depends on core, not the other way round). Modules that
need JAX import it themselves, so that light modules (config, run store reading, events)
stay importable by the UI process without pulling JAX in.
"""
