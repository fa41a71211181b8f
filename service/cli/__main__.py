"""`python -m service.cli`, as the dev supervisor and the tests start processes."""

from service.cli import main

main()
