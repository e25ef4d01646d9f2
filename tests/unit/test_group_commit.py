"""shared.group_commit: concurrent submissions share statements, each gets its own row."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from shared.group_commit import GroupCommit


class Recorder:
    """A batch runner that records each batch, holds the first one until released (so others
    queue up behind it), and answers every item but "skip" with a row."""

    def __init__(self, fail_on: str | None = None):
        self.batches: list[list] = []
        self.first_started = threading.Event()
        self.release = threading.Event()
        self.fail_on = fail_on

    def __call__(self, conn, items):
        self.batches.append(list(items))
        if len(self.batches) == 1:
            self.first_started.set()
            self.release.wait(5)
        if self.fail_on in items:
            raise ValueError(f"refused {self.fail_on}")
        return {item: f"row:{item}:{conn}" for item in items if item != "skip"}


def test_alone_a_submission_runs_at_once_on_its_own_connection():
    runner = Recorder()
    runner.release.set()
    commit = GroupCommit(runner, key=str)
    assert commit.submit("c1", "a") == "row:a:c1"
    assert commit.submit("c1", "skip") is None
    assert runner.batches == [["a"], ["skip"]]


def behind_a_held_statement(commit: GroupCommit, runner: Recorder, submissions: list[tuple[str, str]]) -> list:
    """Submit "first" (its statement is held), then `submissions` (conn, item) while it is in
    flight; release it once they all wait. Returns their futures' outcomes: the row, or the
    exception raised."""
    with ThreadPoolExecutor(len(submissions) + 1) as pool:
        first = pool.submit(commit.submit, "c0", "first")
        assert runner.first_started.wait(5)
        later = [pool.submit(commit.submit, conn, item) for conn, item in submissions]
        while len(commit._pending) < len(submissions):
            threading.Event().wait(0.01)
        runner.release.set()
        assert first.result(5) == "row:first:c0"
        return [f.exception(5) or f.result(5) for f in later]


def test_submissions_during_a_statement_share_the_next_one():
    runner = Recorder()
    commit = GroupCommit(runner, key=str)
    results = behind_a_held_statement(commit, runner, [(f"c{i}", item) for i, item in enumerate("abcdef", 1)])
    assert runner.batches[0] == ["first"]
    assert sorted(runner.batches[1]) == list("abcdef")  # one statement for all six
    led_by = {r.rsplit(":", 1)[1] for r in results}
    assert len(led_by) == 1  # run on the leader's connection
    assert all(row.startswith(f"row:{item}:") for row, item in zip(results, "abcdef"))


def test_a_key_submitted_twice_in_one_batch_runs_once_and_only_the_first_gets_the_row():
    runner = Recorder()
    commit = GroupCommit(runner, key=str)
    rows = behind_a_held_statement(commit, runner, [("c", "same")] * 3)
    assert runner.batches[1] == ["same"]
    assert sorted(rows, key=str) == [None, None, "row:same:c"]


def test_a_refused_item_fails_only_its_own_submitter():
    runner = Recorder(fail_on="bad")
    commit = GroupCommit(runner, key=str)
    good, bad = behind_a_held_statement(commit, runner, [("c", "good"), ("c", "bad")])
    assert good == "row:good:c"
    assert isinstance(bad, ValueError) and str(bad) == "refused bad"
    assert commit.submit("c", "after") == "row:after:c"  # leadership was handed back


def test_many_threads_each_get_their_own_row():
    runner = Recorder()
    runner.release.set()
    commit = GroupCommit(runner, key=str)
    items = [f"t{i}" for i in range(400)]
    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(lambda item: commit.submit("c", item), items))
    assert results == [f"row:{item}:c" for item in items]
    assert sorted(i for b in runner.batches for i in b) == sorted(items)
