"""`python -m core ...` runs the headless command line (what the UI launches as the engine)."""

from core.cli import main

raise SystemExit(main())
