"""``python -m sklearn_mesh`` runs the ``sklearn-mesh`` command line."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
