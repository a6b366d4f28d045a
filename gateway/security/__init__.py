"""Security at the edge: TLS with reloading credentials, caller identity, authorization,
per-caller quotas and the audit log (README "Security")."""
