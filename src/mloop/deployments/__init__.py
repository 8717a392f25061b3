"""Deployments: endpoints with traffic splits, canary rollouts, shadow traffic, request collection and
streaming scoring (see docs/deployments.md).

An endpoint is a stable name bound to model versions with weights; its desired state (spec) and actual state
(status) live in the workspace store, and every change is an event with its actor and cause. The local target
runs the endpoint's scoring processes under a supervisor. Deployments import serving, the registry and the
context, never tracking or pipelines.
"""
