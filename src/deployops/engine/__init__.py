"""Runs plans durably through the ports: deploy, rollback, resume, observe."""
