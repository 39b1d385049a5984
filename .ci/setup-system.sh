#!/usr/bin/env bash
# System packages the project needs beyond Python (Debian/Ubuntu; run as root or with sudo):
#   libreoffice-writer-nogui  DOCX -> PDF for `mcu-nlp report --format pdf` (soffice --headless)
#   poppler-utils             pdftoppm/pdftotext/pdfimages, used by tests and bench/render_report.py
#   fonts-dejavu-core         Cyrillic fonts for LibreOffice and matplotlib
#   chromium                  the console's browser tests (Playwright drives this system browser)
#   nginx                     the proxy in front of the API replicas (deploy/local_cluster.py and
#                             tests/api/test_replicas.py run it as a child process, not a service)
# Idempotent: does nothing when the tools are already there.
set -euo pipefail

if command -v soffice >/dev/null && command -v pdftoppm >/dev/null && command -v chromium >/dev/null \
    && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  libreoffice-writer-nogui poppler-utils fonts-dejavu-core chromium nginx
