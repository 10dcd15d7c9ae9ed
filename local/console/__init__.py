"""Stands in for the AWS console pages an on-call engineer opens: `/_ops` (decision 0012).

The CloudWatch dashboard (drawn with the plotly.js the plotly package ships, so nothing is fetched
from the internet), every alarm with its history, recent traces as waterfalls, the functions' logs
filtered by correlation, booking or trace id, the emulator's faults, and the runbooks the dashboard
and the alarms link to. `routes.py` serves the JSON and the static page of `page/`.

Deliberately not emulated: editing dashboards or alarms (they come from the templates), sign-in and
per-user permissions (the console is on loopback, for the person who started the stack).
"""
