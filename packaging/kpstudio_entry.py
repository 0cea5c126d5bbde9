"""Entry point of the frozen app (PyInstaller): the same `main` as the `kpstudio` command."""

import sys

from kpstudio.cli import main

if __name__ == "__main__":
    sys.exit(main())
