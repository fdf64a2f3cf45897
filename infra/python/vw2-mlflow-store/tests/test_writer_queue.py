"""The bulk store's writer queue admits one metrics write at a time, across threads and processes."""

import multiprocessing
import os
import shutil
import tempfile
import threading
import time
import unittest

from vw2_mlflow_store.store import _WriterQueue


def _hold(path, log, rounds):
    queue = _WriterQueue(path)
    for _ in range(rounds):
        with queue:
            start = time.monotonic()
            time.sleep(0.02)
            with open(log, "a") as f:
                f.write(f"{start} {time.monotonic()}\n")


class WriterQueue(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="vw2-writer-queue-")
        self.lock = os.path.join(self.dir, "mlflow.db.vw2-writer.lock")
        self.log = os.path.join(self.dir, "log")

    def tearDown(self):
        shutil.rmtree(self.dir, True)

    def intervals(self):
        with open(self.log) as f:
            return sorted(tuple(map(float, line.split())) for line in f)

    def assert_no_overlap(self, expected):
        spans = self.intervals()
        self.assertEqual(len(spans), expected)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            self.assertLessEqual(end, start)

    def test_processes_take_turns(self):
        ctx = multiprocessing.get_context("spawn")  # as uvicorn starts its workers
        procs = [ctx.Process(target=_hold, args=(self.lock, self.log, 5)) for _ in range(3)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
            self.assertEqual(p.exitcode, 0)
        self.assert_no_overlap(15)

    def test_threads_take_turns(self):
        queue = _WriterQueue(self.lock)

        def hold():
            for _ in range(5):
                with queue:
                    start = time.monotonic()
                    time.sleep(0.01)
                    with open(self.log, "a") as f:
                        f.write(f"{start} {time.monotonic()}\n")

        threads = [threading.Thread(target=hold) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assert_no_overlap(20)

    def test_an_unwritable_directory_only_loses_the_cross_process_queue(self):
        queue = _WriterQueue(os.path.join(self.dir, "missing", "x.lock"))
        with queue:
            pass
        with self.assertRaises(ZeroDivisionError):
            with queue:
                1 / 0
        with queue:  # released after the error
            pass


if __name__ == "__main__":
    unittest.main()
