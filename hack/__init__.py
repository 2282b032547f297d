"""The local environment: control plane, Prometheus, traffic simulator, demo, and the operator
launcher they share (hack/launch.py).

`hack` and `bench` are packages imported from the repository root (`from hack.launch import ...`,
`from bench.common import ...`). hack/deps.sh puts the root on the virtualenv's path (a `.pth` file,
as pip's editable install does for operator/), so the scripts run either way, with no sys.path
edits of their own: `.venv/bin/python hack/cluster.py up` or `.venv/bin/python -m hack.cluster up`.
"""
