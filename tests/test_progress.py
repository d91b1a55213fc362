"""Progress reports: a tqdm bar on a terminal, a few plain lines in a log."""

import io

from tqdm import tqdm

from cryograd import _progress
from cryograd._progress import LogProgress, progress_bar
from tests.assimilation._twin import A, setup


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_terminal_gets_tqdm_and_a_file_plain_lines():
    import ipykernel  # noqa: F401  (imported, as the notebook tests do: that is not a notebook)

    assert isinstance(progress_bar(10, "x", file=Terminal()), tqdm)
    assert isinstance(progress_bar(10, "x", file=io.StringIO()), LogProgress)


def test_log_lines_at_each_tenth_and_one_at_the_end():
    log = io.StringIO()
    bar = LogProgress(1000, "fit", file=log)
    for step in range(995):
        bar.update(1)
        bar.set_postfix(loss=f"{1.0 / (step + 1):.3g}")
    bar.close()
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    # 10 %, 20 %, ... 90 %, then the end at 995/1000 (99 %)
    assert len(lines) == 10, lines
    # the postfix is the one set before the update that crossed the tenth (step 99: 1/99)
    assert lines[0].startswith("fit: 100/1000 it (10 %), ") and lines[0].endswith("loss=0.0101")
    assert lines[-1].startswith("fit: 995/1000 it (99 %), ")


def test_log_line_after_the_interval_between_tenths(monkeypatch):
    clock = iter([0.0, 1.0, 31.5, 32.0, 33.0])
    monkeypatch.setattr(_progress.time, "monotonic", lambda: next(clock))
    log = io.StringIO()
    bar = LogProgress(100, "chunks", unit="chunk", file=log)  # start at t = 0
    bar.update(1)  # t = 1: no tenth, no interval
    bar.update(1)  # t = 31.5: 30 s since the start
    assert log.getvalue().splitlines() == ["chunks: 2/100 chunk (2 %), 32 s"]


def test_a_fit_in_a_batch_job_writes_a_few_plain_lines(capsys):
    problem, _ = setup(seed=0)
    A.fit(problem, "adam", max_steps=200, learning_rate=0.01, progress=True)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("fit (adam)")]
    assert "\r" not in err
    assert 1 <= len(lines) <= 12, lines
    assert lines[-1].startswith("fit (adam): 200/200 it (100 %)")
