"""The Pulumi program of Ryuzen Telemetry: one ``ComponentResource`` per concern.

``__main__.py`` is what Pulumi runs (``Pulumi.yaml`` → ``main: infra/``); it hands over
to ``program.main``, which reads the stack config and composes the components. The build
step that makes the artifacts the program deploys is ``build_artifacts`` (``nox -s build``).
"""
