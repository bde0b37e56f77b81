"""`python -m edgepose ...` is the `edgepose` command."""
from .cli import main

raise SystemExit(main())
