"""The local stack: the pipeline on moto's embedded AWS, on one machine.

``LocalStack`` (in ``stack.py``) starts moto's server, provisions the stack from
``Pulumi.<stack>.yaml``, serves the REST API on loopback and runs each stage's handler
from its SQS queue, as AWS's event source mappings would.
"""
