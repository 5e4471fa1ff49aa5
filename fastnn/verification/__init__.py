"""``fastnn verify`` and :func:`fastnn.verify`: every numba op against the NumPy reference.

========================  ==============================================================
module                    what it holds
========================  ==============================================================
``verifier.py``           :func:`verify`: runs the cases, collects the rows and failures
``catalog.py``            the ops checked (``CASES``) and how many cases each gets
``case.py``               a case (a drawn call of an op) and its seed, dtype and size
``cases_*.py``            the case generators, by family, fused paths included
``draws.py``              random inputs and shapes (odd sizes, strides, pads, windows)
``builds.py``             the serial or parallel kernel build, the thread count
``runner.py``             one case run and judged by :func:`fastnn.oracle.judge`, and timed
``report.py``             the table, the failures and the summary as text
========================  ==============================================================
"""

from __future__ import annotations

from .verifier import reproduce_command, verify

__all__ = ["reproduce_command", "verify"]
