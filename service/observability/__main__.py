"""``python -m service.observability > docs/METRICS.md``: print the generated metrics table."""

import sys

from service.observability.metrics import render_metrics_doc

if __name__ == "__main__":
    sys.stdout.write(render_metrics_doc())
