"""Background work of a server process: the job runner (heartbeats, leases, claiming and running
hypervisor jobs from SQL) lives in occi.jobs.runner."""
