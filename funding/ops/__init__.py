"""Running the service: health and readiness, process heartbeats, request body limits, JSON logs."""
