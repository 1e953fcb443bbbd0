"""`python -m catcodec ...` is the `catcodec` command."""

from .cli import main

raise SystemExit(main())
