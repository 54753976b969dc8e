"""One router per resource: health, run (run + jacobian), models."""
