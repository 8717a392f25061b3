"""Model registry: loading verified versions, promotion gates, approvals, rollback, evaluation."""
