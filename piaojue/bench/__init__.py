"""``piaojue bench ballot``: how fast the ballot service takes a congress's ballots, and how fast
it opens and counts a province-sized sealed vote. See tests/bench/README.md.

``client`` (the load client), ``infrastructure`` (database, vhost, replicas, CPU and memory),
``profile`` (py-spy and database samples), ``scenario`` (the congress played), ``run`` (the phases
and the report). It lives here rather than in tests/bench/ because the ``piaojue`` console script
cannot import ``tests``."""

from piaojue.bench.run import add_arguments, run

__all__ = ["add_arguments", "run"]
