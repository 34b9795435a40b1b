"""`python -m nbnumba` is the `nbnumba` command."""

from .cli import console

console()
