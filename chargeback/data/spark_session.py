"""A Spark session for chargeback: local (`local[2]`) or Spark Connect (`sc://`).

In the data layer because both reading a Spark Connect source
(data/warehouse.py) and the Spark engine (engine/spark_engine.py) need one,
with the same settings: UTC, Arrow, case-sensitive column names.
"""

from __future__ import annotations

import atexit
import os
from typing import TYPE_CHECKING, Any, cast

from chargeback.data.scratch import scratch_dir
from chargeback.errors import driver

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SESSION_CONF = {  # runtime settings the SQL relies on, set on every session used
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.caseSensitive": "true",  # a `fields` column `Plan` is not `plan`
}
LOCAL_CONF = {  # a small embedded Spark: no UI, few partitions, loopback only
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
}


_CLOSING: set[int] = set()  # the Connect sessions _close_at_exit has seen


def _close_at_exit(spark: Any) -> None:
    """Close a Connect session's channel when the process ends, before pyspark's own exit
    handler (atexit runs the last registered first; the client registers its handler
    when it is made, before this). Why: that handler sends an RPC (its ML cache's
    cleanup), retried for about 10 minutes when the server is gone, so a cron run
    whose cluster went down would hang at exit; on a closed channel it sends nothing.
    The session is not released on the server (pyspark's default): it times out there.
    Who asks pyspark to release it (SPARK_CONNECT_RELEASE_SESSION_ON_EXIT) keeps that,
    and its wait for a gone server."""
    release = os.environ.get("SPARK_CONNECT_RELEASE_SESSION_ON_EXIT", "false")
    if id(spark) in _CLOSING or release.lower() in ("true", "1"):
        return
    _CLOSING.add(id(spark))

    def close() -> None:
        client = getattr(spark, "client", None)
        if client is not None and not client.is_closed:
            client.close()

    atexit.register(close)


def session(remote: str | None = None) -> SparkSession:
    """Spark Connect at `remote` (sc://...), else the active session or a new local[2] one."""
    builder = driver("pyspark.sql", "spark").SparkSession.builder
    spark: Any
    if remote is not None:
        # Spark Connect's own builder: pyspark's refuses while a local session exists
        from pyspark.sql.connect.session import SparkSession as RemoteSession

        spark = RemoteSession.builder.remote(remote).getOrCreate()
        _close_at_exit(spark)
    else:
        builder = builder.master("local[2]").appName("chargeback")
        for key, value in LOCAL_CONF.items():
            builder = builder.config(key, value)
        # Spark's default is spark-warehouse/ in the current folder, left behind
        builder = builder.config("spark.sql.warehouse.dir", str(scratch_dir() / "spark-warehouse"))
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("ERROR")
    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)
    return cast("SparkSession", spark)  # a Connect session has the same API
