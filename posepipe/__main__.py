from posepipe.cli import main

raise SystemExit(main())
