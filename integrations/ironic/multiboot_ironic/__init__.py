"""An ironic-python-agent hardware manager that deploys multi-image nodes."""
