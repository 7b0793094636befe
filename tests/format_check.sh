#!/usr/bin/env bash
# The tree stays clang-format clean (.clang-format; `make format` fixes it). Run by ctest as
# Format.ClangFormatClean; skipped (exit 77) without clang-format or outside a git checkout.
set -uo pipefail
cd "$1" || exit 1
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 77; }
files=$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2>/dev/null) || { echo "not a git checkout: skipped"; exit 77; }
[ -n "$files" ] || { echo "no tracked sources: skipped"; exit 77; }
bad=0
for f in $files; do
  [ -f "$f" ] || continue
  if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then
    echo "not clang-format clean: $f (make format)"
    bad=1
  fi
done
exit $bad
