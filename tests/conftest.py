import os

# An unknown shape means silence in production, but a raise under test (CONTRIBUTING.md).
os.environ["SESSIONLINT_STRICT"] = "1"
os.environ["NO_COLOR"] = "1"

import tempfile

# CLI runs write their result cache here, not into the checkout.
os.environ["SESSIONLINT_CACHE_DIR"] = os.path.join(tempfile.mkdtemp(prefix="sessionlint-test-cache-"), "cache")
# and anything under the user's cache directory here, not in ~/.cache.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="sessionlint-test-xdg-")
