"""Jobs: bulk actions the Celery worker runs, with progress, pause, cancel and a verdict.

The web side calls ``do_start_job`` (creates the ``Job`` row, writes the audit
entry, queues the ``dashboard.run_job`` task) and ``do_pause_job``,
``do_resume_job``, ``do_cancel_job`` (state changes the running job notices at
its next checkpoint, about every ``MQB_JOB_PROGRESS_INTERVAL`` seconds).

The worker side: ``run_job`` looks up the job's kind in ``RUNNERS`` and runs
``async def runner(run: JobRun) -> JobOutcome`` in its own event loop. The
runner calls ``await run.checkpoint(done=..., total=..., rate=...)`` often;
the checkpoint stores progress at most every interval, pushes it to the
channel group ``job.<id>`` (``JobConsumer`` forwards it to browsers) and
answers run, pause or cancel. A new kind of job is one runner function, one
template saying what a job of the kind does, and one ``JobKind`` in ``RUNNERS``
(runner, title, template).

Modules: ``control`` (start, pause, resume, cancel, read; ``RUNNERS``),
``runner`` (``run_job``, ``JobRun``), ``revive`` (jobs whose worker died),
``move`` (the RabbitMQ move job), ``tasks`` (the Celery tasks), ``views``,
``urls``, ``websockets`` (progress to the browser), ``api`` (the JSON API's router),
``events`` (``JobOut``: a job as the API answers and as progress events carry it).
"""
