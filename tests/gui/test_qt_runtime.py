"""The installed Qt binding survives what a labeling session does thousands of times."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_signal_emits_do_not_corrupt_the_interpreter():
    # PySide6 6.12.0 on CPython 3.11 lost a reference to True per emit and aborted after ~570
    # emits ("bool_dealloc"): every label edit emits, so the studio would crash mid-session.
    code = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QObject, Signal
        class Sender(QObject):
            changed = Signal(int)
        sender = Sender()
        sender.changed.connect(lambda value: None)
        before = sys.getrefcount(True)
        for i in range(5000):
            sender.changed.emit(i)
        print(sys.getrefcount(True) - before)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert abs(int(result.stdout.strip())) < 50
