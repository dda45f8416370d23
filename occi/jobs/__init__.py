"""Background work of a server process: the job runner (heartbeats, leases, claiming and running
hypervisor jobs from SQL) in occi.jobs.runner; what a job does on the backend in
occi.jobs.execution; reconciliation with the platform in occi.jobs.reconcile; links' derived
states in occi.jobs.link_states. Nothing here imports the service."""
