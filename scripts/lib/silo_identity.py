"""Checks that GET /v1/cluster (read from standard input) was answered by the silo a script started.

Usage: silo_identity.py CLUSTER_ID SILO_NAME SILO_ENDPOINT
Exit 0 when the answering silo belongs to CLUSTER_ID and names itself SILO_NAME at SILO_ENDPOINT; otherwise exit 1
and print, in one line, who answered instead.
"""
import json
import sys

cluster_id, name, endpoint = sys.argv[1:4]
try:
    view = json.load(sys.stdin)
except ValueError as error:
    print("the answer is not JSON ({0})".format(error))
    sys.exit(1)

if not isinstance(view, dict):
    print("the answer is not a cluster view")
    sys.exit(1)

selves = [s for s in view.get("silos") or [] if isinstance(s, dict) and s.get("isSelf")]
self_silo = selves[0] if selves else {}
if view.get("clusterId") != cluster_id:
    print("it belongs to cluster '{0}', not '{1}'".format(view.get("clusterId"), cluster_id))
    sys.exit(1)
if self_silo.get("name") != name or self_silo.get("endpoint") != endpoint:
    print("it is silo '{0}' at {1}, not '{2}' at {3}".format(self_silo.get("name"), self_silo.get("endpoint"), name, endpoint))
    sys.exit(1)
