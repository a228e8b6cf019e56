"""``python -m trustcircle``."""

from trustcircle.cli.main import main

main()
