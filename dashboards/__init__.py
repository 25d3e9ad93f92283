"""Grafana dashboards as code, generated from the plant configuration.

``build`` writes ``generated/*.json`` (provisioned by compose from ``provisioning/``),
``validate`` checks them offline against Grafana's schema (``schema/``), ``deploy`` pushes them
to an existing Grafana, ``run``/``interpolate`` execute their queries as Grafana would and
``render_example`` draws a dashboard's data for the README.
"""
