"""Prints GET /v1/cluster (read from standard input) as a table."""
import json
import sys

view = json.load(sys.stdin)
print("cluster {0}, view version {1}, as seen by {2}".format(view["clusterId"], view["viewVersion"], view["self"]))
row = "{:<26} {:>4} {:<10} {:<14} {:>5}  {}"
print(row.format("ENDPOINT", "GEN", "NAME", "STATUS", "VOTES", "LAST HEARTBEAT (database clock)"))
for silo in view["silos"]:
    print(row.format(silo["endpoint"], silo["generation"], silo["name"], silo["status"], silo["suspicionVotes"], silo["heartbeatAt"]))
