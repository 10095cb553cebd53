#!/usr/bin/env bash
# Writes the haystack corpus that the model module ships (PythonCorpus.stdlib(), the default
# --haystack of demo, eval niah and bench decode): a fixed selection of Python 3.11 standard-library
# modules, stored as one zip with the PSF licence beside it, so that a seed gives the same prompt on
# every machine. Not part of the build: run it only to change the corpus (and then expect the demo's
# needle, answers and every seeded haystack to change).
#
#   scripts/make-haystack-corpus.sh [PYTHON_LIB_DIR (/usr/lib/python3.11)]
#
# Selection: the top-level modules of 4-32 KB (enough text per file for a haystack, none so large
# that it fills a prompt), except two files that Debian patches or adds (site.py,
# _distutils_system_mod.py). Entries are sorted, with a fixed time stamp, so the zip is reproducible
# from the same sources.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LIB="${1:-/usr/lib/python3.11}"
OUT="$ROOT/model/src/main/resources/org/retroinfer/model/eval/stdlib"
[[ -f "$LIB/LICENSE.txt" ]] || { echo "no $LIB/LICENSE.txt: point at a Python 3.11 Lib directory" >&2; exit 1; }
mkdir -p "$OUT"
python3 - "$LIB" "$OUT/python-3.11-stdlib.zip" <<'PY'
import os, sys, zipfile
lib, out = sys.argv[1], sys.argv[2]
skip = {"site.py", "_distutils_system_mod.py"}
names = sorted(n for n in os.listdir(lib)
               if n.endswith(".py") and n not in skip and os.path.isfile(os.path.join(lib, n))
               and 4 * 1024 < os.path.getsize(os.path.join(lib, n)) < 32 * 1024)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    for n in names:
        info = zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        with open(os.path.join(lib, n), "rb") as f:
            z.writestr(info, f.read())
print(f"{out}: {len(names)} files")
PY
cp "$LIB/LICENSE.txt" "$OUT/LICENSE.txt"
