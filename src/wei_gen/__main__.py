"""Run the CLI with ``python -m wei_gen``."""

from wei_gen.cli import main

main()
