"""The request/response shapes the scoring server speaks: native ``/predict`` and MLflow's ``/invocations``."""
