"""The staffing offices' workspace: see a finding and its evidence, answer it (OUTPUTS.md
"What the offices say", "Who may see and say what", "The workspace API").

:mod:`include.workspace.service` holds the rules over ``roster_db`` (scope, validation,
dispositions, audit), testable without a server; the Airflow plugin in ``plugins/`` serves
them over HTTP.
"""
