"""Tests of the Pulumi program (Pulumi mocks: no CLI, no AWS) and of its build step."""
