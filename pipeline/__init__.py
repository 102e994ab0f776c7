"""The pipeline: what joins the trackers to the warehouse and keeps results fresh.

``sync`` (one source run, read -> validate -> commit atomically), ``manager`` (one sync per
source at a time inside a server), ``schedule`` (cron per source), ``refresh`` (analyses kept
per generation). Above connectors/ and warehouse/, below api/ and reports/.
"""
