from mothtui.cli import main

raise SystemExit(main())
