"""The Amazon EC2-compatible Query API, served under /ec2/ beside OCCI: a front that parses EC2's
wire format into calls of the same service (occi.service) and renders its answers back.

Rooms: sigv4 (signature verification), credentials (access keys), params (the form's
parameters), ids (EC2 ids of entities and images, the one state table), xml (answers and
errors), errors (occi.errors mapped once to EC2's codes), store (key pairs, tags, instance
records), actions/ (one module per area) and front (the falcon resource).
"""
