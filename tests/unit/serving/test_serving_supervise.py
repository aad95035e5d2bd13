"""What the supervisor writes when Triton exited on its own."""

from __future__ import annotations

from serving.supervise import describe_exit


def test_describe_exit() -> None:
    assert describe_exit(-11) == "killed by SIGSEGV"
    assert describe_exit(-6) == "killed by SIGABRT"
    assert describe_exit(1) == "exit status 1"
    assert describe_exit(-200) == "killed by signal 200"
