#!/usr/bin/env bash
# The run step of action.yml: install sessionlint into a virtualenv of its own, run it with
# GitHub annotations, optionally write SARIF, and exit with sessionlint's exit code.
# Inputs come as environment variables: INPUT_VERSION, INPUT_ARGS, INPUT_SARIF_FILE; the
# runner provides GITHUB_ACTION_PATH, RUNNER_TEMP and GITHUB_OUTPUT.
set -euo pipefail

version="${INPUT_VERSION:-source}"
venv="${RUNNER_TEMP:-/tmp}/sessionlint-action-venv"
python="${PYTHON:-python3}"

if [ "$version" = "source" ]; then
  package="$GITHUB_ACTION_PATH"
elif [[ "$version" =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
  package="sessionlint==$version"
else
  echo "::error title=sessionlint action::version must be 'source' or a version number, not '$version'"
  exit 2
fi
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$package"

set -f  # args are split on whitespace, never globbed
read -r -a args <<< "${INPUT_ARGS:-.}"
set +f

status=0
"$venv/bin/sessionlint" --output-format github "${args[@]}" || status=$?
if [ -n "${INPUT_SARIF_FILE:-}" ] && [ "$status" -ne 2 ]; then
  "$venv/bin/sessionlint" --output-format sarif --output-file "$INPUT_SARIF_FILE" --exit-zero "${args[@]}"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "exit-code=$status" >> "$GITHUB_OUTPUT"
fi
exit "$status"
