"""A failing rank ends the whole job: an uncaught exception on any rank aborts it with
a message, instead of leaving the other ranks waiting forever in a collective.

This is what ``python -m mpi4py script.py`` does; :func:`abort_on_uncaught_exception`
gives fastnn's own entry points (and any script that calls ``fnn.distributed.init()``) the
same behaviour. A rank killed outright (SIGKILL) is seen by the launcher, which ends the
others.
"""

from __future__ import annotations

import sys
import time
import traceback

__all__ = ["abort_on_uncaught_exception"]

#: Seconds between printing the failure and aborting: the launcher forwards each rank's
#: output through its proxies, and an abort tears them down with whatever they still hold
#: (on a loaded machine the default suite once saw the traceback cut off mid-line).
FORWARD_SECONDS = 0.5


def abort_on_uncaught_exception(comm) -> None:
    """Install a ``sys.excepthook`` that prints the traceback, says which rank failed, and
    calls ``comm.abort(1)`` (MPI_Abort: every rank of the job ends)."""
    previous = sys.excepthook
    if getattr(previous, "aborts_the_job", False):
        return

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt) or comm.size == 1:
            previous(kind, value, tb)
            return
        traceback.print_exception(kind, value, tb)
        print(
            f"fastnn.distributed: rank {comm.rank} of {comm.size} failed with {kind.__name__}: {value}; "
            f"aborting the whole job (MPI_Abort) so no rank waits forever. Fix the error above and rerun; "
            "a run with checkpoint=DIR resumes from its last checkpoint",
            file=sys.stderr,
            flush=True,
        )
        sys.stdout.flush()
        time.sleep(FORWARD_SECONDS)  # MPICH's launcher drops output not yet forwarded at the abort
        comm.abort(1)

    hook.aborts_the_job = True
    sys.excepthook = hook
