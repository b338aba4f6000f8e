"""`ivr serve` runs RQ jobs in a thread: they run, and their time-out works there too."""

from __future__ import annotations

import threading

import redis
from rq import Queue, SimpleWorker
from rq.job import Job, JobStatus

from ivr.serve import ThreadWorker
from tests.support import jobs


def _run_in_thread(worker: SimpleWorker, queue: Queue) -> None:
    thread = threading.Thread(target=worker.work, kwargs={"burst": True}, daemon=True)
    thread.start()
    thread.join(30)
    assert not thread.is_alive()


def test_jobs_run_and_time_out_in_a_worker_thread(redis_client: redis.Redis):
    queue = Queue("callbacks", connection=redis_client)
    ok = queue.enqueue(jobs.quick, 21)
    late = queue.enqueue(jobs.slow, 5, job_timeout=1)
    _run_in_thread(ThreadWorker(["callbacks"], connection=redis_client), queue)
    assert Job.fetch(ok.id, connection=redis_client).return_value() == 42
    timed_out = Job.fetch(late.id, connection=redis_client)
    assert timed_out.get_status() is JobStatus.FAILED
    assert "JobTimeoutException" in timed_out.latest_result().exc_string


def test_rqs_own_worker_cannot_run_jobs_in_a_thread(redis_client: redis.Redis):
    """What `ivr serve` did before: RQ's SIGALRM time-out fails every job outside the main
    thread. (This is the failure ThreadWorker exists for; if RQ ever stops using signals
    here, this test says so.)"""

    class SignalHandlersOff(SimpleWorker):
        def _install_signal_handlers(self) -> None:
            pass

    queue = Queue("callbacks", connection=redis_client)
    job = queue.enqueue(jobs.quick, 21)
    _run_in_thread(SignalHandlersOff(["callbacks"], connection=redis_client), queue)
    failed = Job.fetch(job.id, connection=redis_client)
    assert failed.get_status() is JobStatus.FAILED
    assert "signal only works in main thread" in failed.latest_result().exc_string


def test_a_thread_worker_stops_when_asked(redis_client: redis.Redis):
    worker = ThreadWorker(["callbacks"], connection=redis_client)
    thread = threading.Thread(target=worker.work, daemon=True)
    thread.start()
    worker.stop()
    thread.join(20)
    assert not thread.is_alive()
