"""``python -m posepipe``: the command line (posepipe.cli), or a warm start of it.

With ``POSEPIPE_WARM_SOCKET`` set (the workflow sets it for its jobs when ``resources.warm_start``
is on and its server is up), the stage is forked from that server instead of importing
everything here; without it, or when the server cannot be reached, this process runs the stage.
"""

import os
import sys

if os.environ.get("POSEPIPE_WARM_SOCKET") and sys.argv[1:2] != ["with-gpu"]:
    from posepipe.warm import run_client

    code = run_client(sys.argv[1:], socket_file=os.environ["POSEPIPE_WARM_SOCKET"])
    if code is not None:
        raise SystemExit(code)

from posepipe.cli import main  # noqa: E402 (after the warm start, which needs none of it)

raise SystemExit(main())
