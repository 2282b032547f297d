"""What makes the operator run, as opposed to what it decides.

- `loops.py`: one asyncio task per ModelDeployment, started by its first watch event;
- `wakeups.py`: who to wake when something changes (the link from watch events to the loops);
- `reconcile.py`: one gather -> decide -> act pass (`reconcile_once`), the loop around it
  (`run_loop`), the versions a loop's own writes produced (`Watermarks`), and the operator-wide
  `Collaborators` every loop shares;
- `retire.py`: removing a deleted ModelDeployment's serving objects; `retention.py`: deleting the
  pods kept after a quarantine once their retention ends;
- `leader.py`: the leader election elector (Lease); `leading.py`: what only the leader runs, and
  how it starts, and stops at once when the Lease is lost.

The thread pools the blocking clients run in are one policy, in `modelgate/executors.py` (below
act/ and observe/, which use it). handlers/ only registers Kopf handlers that call into here.
"""
