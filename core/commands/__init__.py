"""The commands layer: one module per `mothtui <command>`, each with `add_arguments(parser)` (its
command-line arguments, built from `core.cli`'s shared option helpers) and `run(args) -> exit code`.

`core.cli` lists the commands and imports the one module a command needs when it is parsed. Commands
own the flow (console output, signal handling, the cluster of processes); the layers below them
(engine, stores, simulator, analysis) never import this package (an import-linter contract checks it).
"""
