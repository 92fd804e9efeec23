"""`python -m helpers.sample [--profile smoke] [--root DIR] [--force] [--quiet]`: see helpers.sample.main."""
import sys

from helpers.io import remove_temp_files_on_signals
from helpers.sample import main

if __name__ == "__main__":
    remove_temp_files_on_signals()     # SIGTERM / Ctrl-C leave no hidden temp file behind
    sys.exit(main())
