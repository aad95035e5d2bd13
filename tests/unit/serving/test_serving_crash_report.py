"""How the launcher words a crashed tritonserver (read by the benchmark's notes)."""

from __future__ import annotations

from serving.triton import crash_lines, describe_exit

# The tail of a real log: tritonserver after a Python stub was judged not healthy (2026-11-22).
CRASHED = """\
I1122 06:50:01.335503 5672 http_server.cc:362] "Started Metrics Service at 127.0.0.1:56141"
Signal (11) received.
 0# 0x0000564EB0C2452D in /x/tritonserver
 4# TRITONBACKEND_ModelInstanceExecute in /x/libtriton_python.so

terminate called after throwing an instance of 'boost::interprocess::lock_exception'
  what():  boost::interprocess::lock_exception
"""


def test_crash_lines_pick_the_signal_and_the_exception() -> None:
    assert crash_lines(CRASHED) == [
        "Signal (11) received.",
        "terminate called after throwing an instance of 'boost::interprocess::lock_exception'",
        "what():  boost::interprocess::lock_exception",
    ]


def test_crash_lines_of_a_clean_log_are_empty_and_repeats_are_dropped() -> None:
    assert crash_lines("I1122 \"successfully loaded 'faq_match'\"\n") == []
    assert crash_lines("Signal (11) received.\n" * 3) == ["Signal (11) received."]
    assert len(crash_lines("x exception\n" * 2 + "".join(f"{i} not healthy\n" for i in range(9)))) == 4


def test_describe_exit() -> None:
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(-6) == "killed by SIGABRT"
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-200) == "killed by signal 200"
