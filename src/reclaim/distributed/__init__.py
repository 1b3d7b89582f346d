"""Past one machine: a run's stores worked key range by key range, by Celery workers.

The ``distributed`` extra (``pip install 'reclaim[distributed]'``: Celery with
Redis). The core never imports this package; the CLI reaches it when asked
(``reclaim run --workers celery``, ``reclaim distributed …``).

- :func:`run`: the coordinator, one ``reclaim run`` whose purge and
  quarantine are split into ranges (:mod:`reclaim.distributed.coordinator`);
- :func:`scan`: the read-only scan, range by range;
- :func:`run_range`: what a worker does with one range
  (:mod:`reclaim.distributed.worker`), fenced by the coordinator's lease token;
- :mod:`reclaim.distributed.app`: the Celery app and its one task
  (``celery -A reclaim.distributed.app worker``), imported only where Celery is used.
"""

from reclaim.distributed.coordinator import Dispatcher, InProcess, run, scan, split
from reclaim.distributed.worker import ConfigSpec, RangeTask, run_range

__all__ = ["ConfigSpec", "Dispatcher", "InProcess", "RangeTask", "run", "run_range", "scan", "split"]
