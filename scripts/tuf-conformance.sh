#!/bin/sh
# Runs the public TUF client conformance suite (theupdateframework/tuf-conformance) against
# `bulwark-agent tuf-client`, the agent's image repository verification behind the suite's client
# command line (docs/updates.md, "Conformance with the TUF client suite"). The suite and its Python
# dependencies are not part of this project: give their paths (exported sources) in the environment.
#
#   TUF_CONFORMANCE_SUITE  the suite's folder (holds tuf_conformance/ and CLIENT-CLI.md)
#   PYTHON_TUF_SRC         python-tuf's sources (the suite's repository simulator uses its metadata API)
#   SECURESYSTEMSLIB_SRC   securesystemslib 1.4's sources
#   PYTHON_SITE            optional: a folder put first on PYTHONPATH (e.g. holding a sitecustomize.py)
#   PYTHON                 optional: the interpreter (default /usr/bin/python3, which sees Debian's
#                          python3-pytest and python3-cryptography); faketime on PATH
#
# Extra arguments go to pytest, e.g. `-x` or `-k test_cached_role`. Needs the built agent (npm install
# runs the build). Prints pytest's summary: "N passed" and each failure. Not run in CI (the suite
# is not in the project); docs/updates.md has the count measured here.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
: "${TUF_CONFORMANCE_SUITE:?the suite folder}" "${PYTHON_TUF_SRC:?python-tuf sources}" "${SECURESYSTEMSLIB_SRC:?securesystemslib sources}"
agent="$root/packages/device/bin/bulwark-agent.js"
if [ ! -f "$root/packages/device/dist/updates/tuf-client.js" ]; then
  echo "tuf-conformance: build the agent first (npm run build)" >&2
  exit 2
fi
command -v faketime >/dev/null || { echo "tuf-conformance: faketime is not installed (apt-get install faketime)" >&2; exit 2; }
cd "$TUF_CONFORMANCE_SUITE"
PYTHONPATH="${PYTHON_SITE:+$PYTHON_SITE:}$PYTHON_TUF_SRC:$SECURESYSTEMSLIB_SRC:$TUF_CONFORMANCE_SUITE" \
  exec "${PYTHON:-/usr/bin/python3}" -m pytest -q -rf tuf_conformance --entrypoint "$(command -v node) $agent tuf-client" "$@"
