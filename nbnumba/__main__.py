"""`python -m nbnumba` is the `nbnumba` command."""

from .cli import main

main()
