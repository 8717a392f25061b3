"""Parts of ``bench/bench_tracking.py``. ``profile-runs``: where mloop's time per run goes in ``runs``
(the "before" and "after" figures of write-path work).

    python bench/bench_tracking.py profile-runs [--runs 1000] [--repeat 3] [--pyspy-rate 250] [--json]

The work is the mloop-sqlite side of ``runs`` (N runs, each ``start_run``, one ``log_params`` of 10 params, one
``log_metrics`` of 10 metrics, end), in fresh worker processes and fresh stores, seen three ways:

phases   One worker runs the loop twice: N runs untouched (the plain time per run), then N runs with
         wall-clock timers wrapped around mloop's phases (start_run, experiment lookup, environment capture,
         create_run, Run(), end, end_run, write_event, the transaction wrapper...), SQLAlchemy events around
         every driver ``cursor.execute``, a stand-in for the sqlite3 connection that mloop's SQLite fast path
         writes to (``mloop.store.sql.fastpath``, past SQLAlchemy's events) and a timer around the driver's
         COMMIT. Inclusive times per run, and the count of transactions and statements per run. The statements
         the driver received are recorded.
sql      The recorded statements replayed with plain ``sqlite3`` (same PRAGMAs) on a copy of the store taken
         just before the instrumented loop: as mloop sent them (its transactions), merged into one
         transaction per run, merged without the event rows, both without automatic WAL checkpoints (which
         also counts the WAL pages a run writes), and as sent without the (key, value) indexes of params and
         latest metrics (what search by value costs the writes). The floor of the SQL work, without Python.
py-spy   ``py-spy record --idle`` (wall clock, sampled) of an unmodified ``runs`` worker; each sample of the timed
         loop is put in one mloop operation (the deepest of start_run / create_run / write_event / end_run /
         ... in its stack) and one layer (sqlite3 C code, SQLAlchemy compile, SQLAlchemy execution, mloop,
         other Python; stdlib frames count for the library that called them; a sample whose innermost frame is
         a fast-path line calling ``driver.execute``/``executemany`` counts as sqlite3 C code). Skipped with a
         note if py-spy is not installed (``pip install py-spy``).
"""
