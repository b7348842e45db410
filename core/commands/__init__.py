"""The commands layer: one module per `mothtui <command>`, each with `run(args) -> exit code`.

`core.cli` parses the command line and imports the one module a command needs. Commands own the
flow (console output, signal handling, the cluster of processes); the layers below them (engine,
stores, simulator, analysis) never import this package (an import-linter contract checks it).
"""
