import time
import threading


class TaskQueue:
    """Run callables on a few worker threads and collect their results."""

    def __init__(self, workers=2):
        self._lock = threading.Lock()
        self._pending = []
        self._results = {}
        self._workers = workers

    def submit(self, name, func, *args):
        with self._lock:
            self._pending.append((name, func, args))

    def _worker(self):
        while True:
            with self._lock:
                if not self._pending:
                    return
                name, func, args = self._pending.pop(0)
            start = time.monotonic()
            try:
                value = func(*args)
                error = None
            except Exception as exc:
                value, error = None, exc
            elapsed = time.monotonic() - start
            with self._lock:
                self._results[name] = (value, error, elapsed)

    def run(self):
        threads = [threading.Thread(target=self._worker) for _ in range(self._workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return dict(self._results)


def retry(func, attempts=3, delay=0.1):
    for attempt in range(attempts):
        try:
            return func()
        except OSError:
            if attempt == attempts - 1:
                raise
            time.sleep(delay * (2 ** attempt))
