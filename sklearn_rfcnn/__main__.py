"""``python -m sklearn_rfcnn`` runs the ``rfcnn`` command line."""

import sys

from sklearn_rfcnn.cli import main

sys.exit(main())
