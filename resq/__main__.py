"""``python -m resq`` runs the ``resq`` command line."""

from resq.cli import main

main()
