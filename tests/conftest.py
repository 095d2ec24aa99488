"""Test-session set-up shared by every test."""

from __future__ import annotations

import signal

# Several tests press Ctrl-C (SIGINT) on kitt, in this process or in a child. A shell that
# starts a job in the background without job control makes it ignore SIGINT, and children
# inherit that, so those tests would wait forever: give SIGINT back its usual meaning (a Python
# handler, which children started from here reset to the default at exec).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
